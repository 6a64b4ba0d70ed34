"""Typed answers and typed errors from the real service under gunicorn."""

from __future__ import annotations

import re

import pytest
import requests
from riskclient import (
    AuthError,
    ChallengeReport,
    Conflict,
    Decision,
    InvalidRequest,
    NotFound,
    Outcome,
    RateLimit,
    Reason,
    RewardCheck,
    RiskClient,
    Scores,
)

from tests.client.conftest import RELAXED_S, unique
from tests.conftest import ANALYST
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving


def fill_window(risk: RiskClient, device: str) -> list[Decision]:
    """The 20 shares the device-velocity window admits (5 users: under the accounts-per-device rule)."""
    return [risk.decide(unique("ev"), device, f"u{i % 5}", "cp-1") for i in range(20)]


def test_a_normal_decision_is_typed_and_replays(risk: RiskClient) -> None:
    event, device = unique("ev"), unique("dev")
    first = risk.decide(event, device, "u-7", "cp-1", merchant_id="m-1", channel="group", recipients=["u-8", "u-9"],
                        ip="203.0.113.5", geo=(31.23, 121.47), text="邀请好友同步优惠")
    assert first.decision_id is not None and re.fullmatch(r"[A-Za-z0-9_-]{33,}", first.decision_id)
    assert first.policy_version is not None and first.policy_version.startswith("default@")
    assert first == Decision(
        decision="allow", challenge=None, reasons=(), degraded=False, decision_id=first.decision_id,
        retry_after=None, shadow=(), scores=Scores(risk=0.0, anomaly=None, kol=None),
        policy_version=first.policy_version, replayed=False,
        rate_limit=RateLimit(name="device_velocity", remaining=19, reset_s=300, quota=20, window_s=300), local=False,
    )
    again = risk.decide(event, device, "u-7", "cp-1", merchant_id="m-1", channel="group", recipients=["u-8", "u-9"],
                        ip="203.0.113.5", geo={"lat": 31.23, "lon": 121.47}, text="邀请好友同步优惠")
    assert again.replayed is True
    assert again.decision_id == first.decision_id
    assert again.rate_limit == first.rate_limit  # counted once


def test_a_refusal_names_its_rule_and_when_to_retry(risk: RiskClient) -> None:
    device = unique("dev")
    assert {d.decision for d in fill_window(risk, device)} == {"allow"}
    refused = risk.decide(unique("ev"), device, "u0", "cp-1")
    assert (refused.decision, refused.challenge, refused.degraded) == ("challenge", "captcha", False)
    (reason,) = refused.reasons
    assert isinstance(reason, Reason)
    assert (reason.code, reason.action, reason.challenge, reason.observed, reason.limit, reason.window_s) == (
        "device_velocity", "challenge", "captcha", 21, 20, 300)
    assert reason.retry_after_s is not None and 0 < reason.retry_after_s <= 300
    assert refused.retry_after == reason.retry_after_s
    assert refused.rate_limit is not None and refused.rate_limit.remaining == 0


def test_outcomes_and_challenge_results_are_typed(risk: RiskClient) -> None:
    allowed = risk.decide(unique("ev"), unique("dev"), "u-7", "cp-1", recipients=["a", "b", "c"])
    assert allowed.decision_id is not None
    outcome = risk.report_outcome(allowed.decision_id, delivered=3, opened=2, claimed=1)
    assert outcome == Outcome(decision_id=allowed.decision_id, delivered=3, opened=2, claimed=1, success=True,
                              replayed=False)
    assert risk.report_outcome(allowed.decision_id, 3, 2, 1).replayed is True

    device = unique("dev")
    fill_window(risk, device)
    challenged = risk.decide(unique("ev"), device, "u0", "cp-1")
    assert challenged.decision_id is not None
    report = risk.report_challenge(challenged.decision_id, passed=True, kind="captcha")
    assert report == ChallengeReport(decision_id=challenged.decision_id, passed=True, counted=True, cooldown=False,
                                     replayed=False, blocked_by=None)
    assert risk.report_challenge(challenged.decision_id, True, "captcha").replayed is True


def test_a_pass_held_by_a_ban_says_which(risk: RiskClient, service: Gunicorn) -> None:
    """An analyst blocks the device between the challenge and its pass: the
    pass does not count and the report names the ban."""
    device = unique("dev")
    fill_window(risk, device)
    challenged = risk.decide(unique("ev"), device, "u0", "cp-1")
    assert challenged.decision_id is not None
    blocked = requests.post(f"{service.url}/v1/review/devices/{device}/actions", headers=ANALYST,
                         json={"action": "block", "reason": "abuse seen"}, timeout=RELAXED_S)
    assert blocked.status_code == 200, blocked.text
    report = risk.report_challenge(challenged.decision_id, passed=True, kind="captcha")
    assert (report.passed, report.counted, report.blocked_by) == (True, False, "device_blocklist")


def test_reward_checks_are_typed(risk: RiskClient) -> None:
    event, user = unique("rw"), unique("user")
    check = risk.check_reward(event, user, unique("dev"), amount_cents=800, reason="3 friends claimed")
    assert check == RewardCheck(decision="allow", challenge=None, reward_id=check.reward_id, reasons=(),
                                amount_cents=800, bonus_cents=0, kol_tier=None, reach=0, anomaly=None,
                                replayed=False)
    over = risk.check_reward(unique("rw"), user, unique("dev"), amount_cents=50_000, reason="too much")
    assert (over.decision, [r.code for r in over.reasons]) == ("block", ["reward_daily_cap"])


def test_invalid_fields_raise_invalid_request_naming_them(risk: RiskClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        risk.decide(unique("ev"), "", "u", "cp", geo={"lat": 100.0, "lon": 0.0}, channel="fax")  # type: ignore[arg-type]
    err = caught.value
    assert (err.status, err.code) == (422, "invalid_request")
    assert set(err.fields) == {"device_id", "geo.lat", "channel"}
    assert err.fields["geo.lat"] == "Input should be less than or equal to 90"


def test_a_reused_event_id_with_another_body_is_a_conflict(risk: RiskClient) -> None:
    event, device = unique("ev"), unique("dev")
    risk.decide(event, device, "u", "cp-1")
    with pytest.raises(Conflict) as caught:
        risk.decide(event, device, "u", "cp-2")
    assert (caught.value.status, caught.value.code) == (409, "conflict")


def test_unknown_decisions_and_bad_keys(risk: RiskClient, service: Gunicorn) -> None:
    with pytest.raises(NotFound) as missing:
        risk.report_outcome("no-such-decision", 1, 1, 1)
    assert missing.value.fields == {"decision_id": "not found"}
    device = unique("dev")
    fill_window(risk, device)
    challenged = risk.decide(unique("ev"), device, "u0", "cp")
    assert challenged.decision_id is not None
    with pytest.raises(InvalidRequest) as wrong_kind:
        risk.report_challenge(challenged.decision_id, True, "sms")
    assert set(wrong_kind.value.fields) == {"kind"}
    with RiskClient(service.url, "not-a-key-of-this-service", timeout=RELAXED_S) as stranger:
        with pytest.raises(AuthError) as denied:
            stranger.decide(unique("ev"), unique("dev"), "u", "cp")
    assert (denied.value.status, denied.value.code) == (401, "unauthorized")
