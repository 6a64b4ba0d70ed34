"""Outcomes and challenge results, and the rules that feed on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from riskservice.app import create_app
from riskservice.events import read_events
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import decision_keys
from riskservice.limits.records import decode_device_state
from riskservice.state import risk_state
from tests.api.helpers import codes, share
from tests.conftest import ANALYST, ISSUER, make_settings


def outcome(client: FlaskClient, decision_id: str, delivered: int = 1, opened: int = 1, claimed: int = 0,
            ) -> object:
    return client.post("/v1/outcomes", json={"decision_id": decision_id, "delivered": delivered,
                                             "opened": opened, "claimed": claimed}, headers=ISSUER)


def challenge(client: FlaskClient, decision_id: str, passed: bool, kind: str = "captcha") -> object:
    return client.post(f"/v1/challenges/{decision_id}", json={"passed": passed, "kind": kind}, headers=ISSUER)


def test_outcome_is_recorded_and_idempotent(client: FlaskClient) -> None:
    did = share(client, recipients=["a", "b", "c"]).json["decision_id"]
    first = outcome(client, did, 3, 2, 1)
    assert first.status_code == 200
    assert first.json == {"decision_id": did, "delivered": 3, "opened": 2, "claimed": 1, "success": True,
                          "replayed": False}
    again = outcome(client, did, 3, 2, 1)
    assert again.status_code == 200 and again.json["replayed"] is True


def test_outcome_counts_may_grow_but_not_shrink(client: FlaskClient) -> None:
    did = share(client, recipients=["a", "b", "c"]).json["decision_id"]
    assert outcome(client, did, 2, 1, 0).status_code == 200
    assert outcome(client, did, 3, 3, 2).status_code == 200
    shrink = outcome(client, did, 3, 1, 0)
    assert shrink.status_code == 409 and "decision_id" in shrink.json["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"decision_id": "nope", "delivered": 1, "opened": 0, "claimed": 0}, 404, "decision_id"),
        ({"decision_id": "x", "delivered": 1, "opened": 2, "claimed": 0}, 422, "opened"),
        ({"decision_id": "x", "delivered": 1, "opened": 1, "claimed": 2}, 422, "claimed"),
        ({"decision_id": "x", "delivered": -1, "opened": 0, "claimed": 0}, 422, "delivered"),
        ({"decision_id": "x", "delivered": 1, "opened": 0}, 422, "claimed"),
        ({"decision_id": "x", "delivered": True, "opened": 0, "claimed": 0}, 422, "delivered"),
    ],
)
def test_bad_outcomes(client: FlaskClient, body: dict[str, object], status: int, field: str) -> None:
    resp = client.post("/v1/outcomes", json=body, headers=ISSUER)
    assert resp.status_code == status
    assert field in resp.json["error"]["fields"]


def test_outcome_cannot_exceed_recipients(client: FlaskClient) -> None:
    did = share(client, recipients=["a", "b"]).json["decision_id"]
    resp = outcome(client, did, 3, 0, 0)
    assert resp.status_code == 422 and "delivered" in resp.json["error"]["fields"]


def test_outcome_of_a_blocked_share_is_409(client: FlaskClient) -> None:
    did = share(client, text="转发得现金").json["decision_id"]
    resp = outcome(client, did)
    assert resp.status_code == 409
    assert "blocked" in resp.json["error"]["message"]


def test_outcomes_need_the_issuer_role(client: FlaskClient) -> None:
    from tests.conftest import ANALYST

    resp = client.post("/v1/outcomes", json={"decision_id": "x", "delivered": 0, "opened": 0, "claimed": 0},
                       headers=ANALYST)
    assert resp.status_code == 403


def challenged(client: FlaskClient, clock: ManualClock, device: str = "dev-c") -> str:
    for i in range(20):
        assert share(client, device_id=device, user_id=f"u{i % 5}").json["decision"] == "allow"
    resp = share(client, device_id=device, user_id="u0")
    assert resp.json["decision"] == "challenge"
    return str(resp.json["decision_id"])


def test_passed_challenge_counts_the_share_then(client: FlaskClient, clock: ManualClock, app: Flask) -> None:
    did = challenged(client, clock)
    redis_client = app.extensions["risk"].store.client
    assert len(decode_device_state(redis_client.get("risk:{d:dev-c}:state"))[0]) == 20
    clock.advance(60)
    resp = challenge(client, did, True)
    assert resp.json == {"decision_id": did, "passed": True, "counted": True, "blocked_by": None, "cooldown": False,
                         "replayed": False}
    log, _ = decode_device_state(redis_client.get("risk:{d:dev-c}:state"))
    assert len(log) == 21 and log[-1] == clock.now_ms()
    # A passed challenge makes it a share: its outcome can be reported.
    assert outcome(client, did, 0, 0, 0).status_code == 200
    assert challenge(client, did, True).json["replayed"] is True
    assert challenge(client, did, False).status_code == 409


def test_challenge_errors(client: FlaskClient, clock: ManualClock) -> None:
    did = challenged(client, clock)
    wrong_kind = challenge(client, did, True, kind="sms")
    assert wrong_kind.status_code == 422 and "kind" in wrong_kind.json["error"]["fields"]
    allowed = share(client, device_id="other").json["decision_id"]
    assert challenge(client, allowed, True).status_code == 409
    assert challenge(client, "unknown", True).status_code == 404
    bad = client.post(f"/v1/challenges/{did}", json={"passed": "yes", "kind": "captcha"}, headers=ISSUER)
    assert bad.status_code == 422 and "passed" in bad.json["error"]["fields"]


def test_five_failed_challenges_in_an_hour_cool_the_device_down(client: FlaskClient, clock: ManualClock) -> None:
    ids = []
    for _ in range(5):
        ids.append(share(client, device_id="dev-f", user_id="u", recipient_count=11).json["decision_id"])
        clock.advance(60)
    for did in ids[:4]:
        assert challenge(client, did, False, kind="sms").json["cooldown"] is False
    assert share(client, device_id="dev-f", user_id="u").json["decision"] == "allow"
    assert challenge(client, ids[4], False, kind="sms").json["cooldown"] is True
    blocked = share(client, device_id="dev-f", user_id="u")
    assert blocked.json["decision"] == "block"
    (reason,) = blocked.json["reasons"]
    assert reason["code"] == "challenge_failures"
    assert reason["retry_after_s"] == 3600
    clock.advance(3600)
    assert share(client, device_id="dev-f", user_id="u").json["decision"] == "allow"


def test_the_replay_of_the_failure_that_cooled_the_device_down_says_so(client: FlaskClient,
                                                                          clock: ManualClock) -> None:
    ids = [share(client, device_id="dev-rp", user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    first = [challenge(client, did, False, kind="sms").json for did in ids]
    assert [a["cooldown"] for a in first] == [False] * 4 + [True]
    again = [challenge(client, did, False, kind="sms").json for did in ids]
    assert [(a["replayed"], a["cooldown"]) for a in again] == [(True, False)] * 4 + [(True, True)]


def test_failures_spread_over_more_than_an_hour_do_not_cool_down(client: FlaskClient, clock: ManualClock) -> None:
    ids = [share(client, device_id="dev-s", user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    for did in ids:
        assert challenge(client, did, False, kind="sms").json["cooldown"] is False
        clock.advance(901)


def test_a_cool_down_never_replaces_an_analyst_ban(client: FlaskClient, clock: ManualClock, app: Flask) -> None:
    ids = [share(client, device_id="dev-b", user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    app.extensions["risk"].store.set_ban("device", "dev-b", reason="fraud ring", actor="analyst-1")
    for did in ids:
        challenge(client, did, False, kind="sms")
    assert codes(share(client, device_id="dev-b")) == ["device_blocklist"]


def test_an_ended_analyst_ban_does_not_hold_off_the_cool_down(client: FlaskClient, clock: ManualClock,
                                                                app: Flask) -> None:
    # an hour's ban by hand, over: its key lives a day longer, but it is no ban in force
    app.extensions["risk"].store.set_ban("device", "dev-e", reason="checked", actor="analyst-1",
                                         until_ms=clock.now_ms() + 3_600_000)
    clock.advance(3601)
    ids = [share(client, device_id="dev-e", user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    assert [challenge(client, did, False, kind="sms").json["cooldown"] for did in ids] == [False] * 4 + [True]
    assert codes(share(client, device_id="dev-e", user_id="u")) == ["challenge_failures"]


def test_a_pass_during_a_cool_down_is_recorded_not_counted(client: FlaskClient, clock: ManualClock,
                                                             app: Flask) -> None:
    # QA D8, pend-1: six fan-out challenges, five failed: the cool-down; then the sixth is passed
    ids = [share(client, device_id="pend-1", user_id="u", recipient_count=11, geo={"lat": 31.2, "lon": 121.4}
                 ).json["decision_id"] for _ in range(6)]
    assert [challenge(client, did, False, kind="sms").json["cooldown"] for did in ids[:5]] == [False] * 4 + [True]
    redis_client = app.extensions["risk"].store.client
    clock.advance(60)
    resp = challenge(client, ids[5], True, kind="sms")
    assert resp.status_code == 200
    assert resp.json == {"decision_id": ids[5], "passed": True, "counted": False, "blocked_by": "challenge_failures",
                         "cooldown": False, "replayed": False}
    # no quota taken, the device not moved, and no share to report an outcome on
    assert redis_client.get("risk:{d:pend-1}:state") is None
    assert redis_client.get("risk:{u:u}:log") is None
    assert not redis_client.exists("risk:{d:pend-1}:geo")
    refused = outcome(client, ids[5], 1, 1, 1)
    assert refused.status_code == 409 and "not counted" in refused.json["error"]["message"]
    # answered the same again, whether or not the cool-down is still there
    clock.advance(3600)
    again = challenge(client, ids[5], True, kind="sms").json
    assert (again["counted"], again["blocked_by"], again["replayed"]) == (False, "challenge_failures", True)
    assert codes(share(client, device_id="pend-1", user_id="u")) == []


def test_a_pass_after_an_analyst_block_is_recorded_not_counted(client: FlaskClient, clock: ManualClock,
                                                                app: Flask) -> None:
    # QA D8, pend-2: a challenge issued, then the device blocked, then the challenge passed
    did = share(client, device_id="pend-2", user_id="u", recipient_count=11).json["decision_id"]
    app.extensions["risk"].store.set_ban("device", "pend-2", reason="farm", actor="analyst-1")
    resp = challenge(client, did, True, kind="sms").json
    assert (resp["passed"], resp["counted"], resp["blocked_by"]) == (True, False, "device_blocklist")
    assert app.extensions["risk"].store.client.get("risk:{d:pend-2}:state") is None
    assert outcome(client, did, 1, 1, 1).status_code == 409
    # the export says so (calibration does not take it for a counted share)
    (line,) = [ev for ev in read_events(app.extensions["risk"].store.client) if ev["decision_id"] == did]
    assert (line["challenge_passed"], line["challenge_held"]) == (True, "device_blocklist")
    # and the analyst's dossier too
    (entry,) = client.get("/v1/review/devices/pend-2", headers=ANALYST).json["decisions"]
    assert (entry["challenge_result"], entry["challenge_held"]) == ("passed", "device_blocklist")
    # the ban's very next decision is blocked, as the docs say
    assert share(client, device_id="pend-2", user_id="u").json["decision"] == "block"


def test_a_pass_counts_once_the_ban_has_ended_or_was_lifted(client: FlaskClient, clock: ManualClock,
                                                            app: Flask) -> None:
    store = app.extensions["risk"].store
    ended = share(client, device_id="pend-3", user_id="u", recipient_count=11).json["decision_id"]
    store.set_ban("device", "pend-3", reason="cool off", actor="analyst-1", until_ms=clock.now_ms() + 60_000)
    clock.advance(61)  # the ban is over (its key lives a day longer)
    assert challenge(client, ended, True, kind="sms").json["counted"] is True
    lifted = share(client, device_id="pend-4", user_id="u", recipient_count=11).json["decision_id"]
    store.set_ban("device", "pend-4", reason="farm", actor="analyst-1")
    store.clear_ban("device", "pend-4")
    assert challenge(client, lifted, True, kind="sms").json == {
        "decision_id": lifted, "passed": True, "counted": True, "blocked_by": None, "cooldown": False,
        "replayed": False}
    assert outcome(client, lifted, 1, 1, 1).status_code == 200
    # an allow-listed device has no ban: the allowlist lifts it
    trusted = share(client, device_id="pend-5", user_id="u", recipient_count=11).json["decision_id"]
    for action in ("block", "allowlist"):
        resp = client.post("/v1/review/devices/pend-5/actions", json={"action": action, "reason": "checked"},
                           headers=ANALYST)
        assert resp.status_code == 200
    assert challenge(client, trusted, True, kind="sms").json["counted"] is True


def shares_with_outcomes(client: FlaskClient, n: int, successes: int, device: str = "dev-r") -> None:
    for i in range(n):
        did = share(client, device_id=device, user_id="u", recipients=["a", "b"]).json["decision_id"]
        assert outcome(client, did, 2, 1, 1 if i < successes else 0).status_code == 200


@pytest.fixture
def roomy(settings: Settings, tmp_path: Path, clock: ManualClock) -> FlaskClient:
    """An app whose count limits stay out of the way of the success-rate rule."""
    policy = Path("config/policy.yaml").read_text().replace("limit: 20,", "limit: 200,").replace(
        "limit: 50,", "limit: 500,")
    path = tmp_path / "roomy.yaml"
    path.write_text(policy)
    return create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=path), clock=clock).test_client()


def test_low_success_rate_needs_20_samples(roomy: FlaskClient) -> None:
    shares_with_outcomes(roomy, 19, 0)
    assert share(roomy, device_id="dev-r", user_id="u").json["decision"] == "allow"


def test_low_success_rate_at_and_past_the_threshold(roomy: FlaskClient) -> None:
    shares_with_outcomes(roomy, 20, 3, device="dev-ok")  # 15 %: not below
    assert share(roomy, device_id="dev-ok", user_id="u").json["decision"] == "allow"
    shares_with_outcomes(roomy, 20, 2, device="dev-low")  # 10 %
    resp = share(roomy, device_id="dev-low", user_id="u")
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    (reason,) = resp.json["reasons"]
    assert (reason["code"], reason["observed"], reason["limit"]) == ("low_success_rate", 0.1, 0.15)
    assert "20 shares" in reason["message"]


def test_a_late_claim_lifts_the_rate(roomy: FlaskClient) -> None:
    ids = []
    for _ in range(20):
        ids.append(share(roomy, device_id="dev-l", user_id="u", recipients=["a"]).json["decision_id"])
        outcome(roomy, ids[-1], 1, 0, 0)
    assert codes(share(roomy, device_id="dev-l", user_id="u")) == ["low_success_rate"]
    for did in ids[:3]:
        outcome(roomy, did, 1, 1, 1)
    assert share(roomy, device_id="dev-l", user_id="u").json["decision"] == "allow"


def test_success_rate_window_slides(roomy: FlaskClient, clock: ManualClock) -> None:
    shares_with_outcomes(roomy, 20, 0, device="dev-w")
    assert codes(share(roomy, device_id="dev-w", user_id="u")) == ["low_success_rate"]
    clock.advance(86_400)
    assert share(roomy, device_id="dev-w", user_id="u").json["decision"] == "allow"


def test_the_success_rate_log_holds_one_entry_per_reported_share_of_the_window(
        roomy: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    key = "risk:{d:dev-x}:outcomes"

    def entries() -> list[tuple[int, int]]:
        raw = redis_client.get(key) or b""
        return [(int.from_bytes(raw[i:i + 6], "big"), raw[i + 6]) for i in range(0, len(raw), 11)]

    old = [share(roomy, device_id="dev-x", user_id="u", recipients=["a"]).json["decision_id"] for _ in range(3)]
    for did in old:
        outcome(roomy, did, 1, 0, 0)
    assert [ok for _, ok in entries()] == [0, 0, 0]
    clock.advance(86_401)  # the three leave the window
    new = [share(roomy, device_id="dev-x", user_id="u", recipients=["a"]).json["decision_id"] for _ in range(2)]
    outcome(roomy, new[0], 1, 0, 0)
    assert entries() == [(clock.now_ms(), 0)]  # the expired ones dropped as a report came
    outcome(roomy, new[1], 1, 1, 1)
    outcome(roomy, new[0], 1, 1, 1)  # a late claim: its entry changed in place
    assert entries() == [(clock.now_ms(), 1), (clock.now_ms(), 1)]
    outcome(roomy, new[0], 1, 1, 1)  # the same report again changes nothing
    assert len(entries()) == 2


def test_a_full_success_rate_log_keeps_the_latest_reports_of_the_window(
        app: Flask, client: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    store, now = risk_state(app).store, clock.now_ms()
    records = []
    for i in range(4):
        share(client, event_id=f"cap-{i}", device_id="dev-c", user_id=f"u{i}", recipients=["a"])
        records.append(decision_keys(f"cap-{i}", "dev-c", f"u{i}", None).event)
    # A log of at most 2 entries (the service's cap is twice the device's daily cap).
    for i, key in enumerate(records):
        status, _ = store.outcome(key, delivered=1, opened=1, claimed=i % 2, window_ms=86_400_000, cap=2,
                                  now_ms=now, retention_ms=86_400_000, events="risk:events")
        assert status == "ok"
    raw = redis_client.get("risk:{d:dev-c}:outcomes")
    assert raw is not None and [raw[i + 6] for i in range(0, len(raw), 11)] == [0, 1]  # the last two reports
