"""POST /v1/review/devices/<device_id>/actions: effects on the decision path, validation, roles."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import ActionResult
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import REVIEW_QUEUE
from tests.api.helpers import codes, share
from tests.conftest import ANALYST, ISSUER
from tests.review.helpers import ANALYST_ID, act, flag


def test_a_block_applies_to_the_very_next_decision(client: FlaskClient) -> None:
    flag(client, "dev-b")
    resp = act(client, "dev-b", "block", reason="device farm seen in the graph")
    assert resp.status_code == 200
    ActionResult.model_validate(resp.json)
    assert resp.json["status"] == "blocked" and resp.json["blocked"] is True
    entry = resp.json["audit"]
    assert (entry["actor"], entry["action"], entry["entity"]) == (ANALYST_ID, "block", "device:dev-b")
    assert entry["reason"] == "device farm seen in the graph"
    blocked = share(client, device_id="dev-b", user_id="someone-new")
    assert blocked.json["decision"] == "block" and codes(blocked) == ["device_blocklist"]
    assert blocked.json["reasons"][0]["observed"] == "device farm seen in the graph"


def test_unblock_lifts_the_ban_and_reopens_an_unlabelled_device(client: FlaskClient,
                                                                redis_client: redis.Redis) -> None:
    flag(client, "dev-u")
    act(client, "dev-u", "block")
    resp = act(client, "dev-u", "unblock", reason="false positive")
    assert resp.json["status"] == "open" and resp.json["blocked"] is False
    assert share(client, device_id="dev-u").json["decision"] == "allow"
    assert redis_client.zscore(REVIEW_QUEUE, "dev-u") == 4
    again = act(client, "dev-u", "unblock")
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"


def test_a_temporary_block_ends_on_the_decision_clock(client: FlaskClient, clock: ManualClock) -> None:
    assert act(client, "dev-t", "block", hours=1).json["audit"]["details"]["until"] == clock.now_ms() + 3_600_000
    assert share(client, device_id="dev-t").json["decision"] == "block"
    clock.advance(3601)
    assert share(client, device_id="dev-t").json["decision"] == "allow"


def test_allowlist_skips_challenges_not_blocks_and_lifts_a_ban(client: FlaskClient) -> None:
    act(client, "dev-a", "block")
    resp = act(client, "dev-a", "allowlist", reason="store terminal")
    assert resp.json["status"] == "allowlisted" and resp.json["audit"]["details"]["lifted_ban"] is True
    fan = share(client, device_id="dev-a", recipient_count=30)
    assert fan.json["decision"] == "allow" and codes(fan, "shadow") == ["fan_out"]
    assert share(client, device_id="dev-a", text="转发抽奖").json["decision"] == "block"


def test_label_and_flag(client: FlaskClient, redis_client: redis.Redis) -> None:
    flag(client, "dev-l")
    resp = act(client, "dev-l", "label", label="fraud", reason="ring")
    assert (resp.json["status"], resp.json["label"]) == ("labelled", "fraud")
    assert redis_client.hget("risk:{d:dev-l}:review", "label") == b"fraud"
    assert redis_client.zscore(REVIEW_QUEUE, "dev-l") is None
    # Flagging by hand puts it back under review, withdrawing the label.
    resp = act(client, "dev-l", "flag", reason="new evidence")
    assert (resp.json["status"], resp.json["label"]) == ("open", None)
    assert resp.json["audit"]["details"]["withdrawn_label"] == "fraud"
    assert redis_client.zscore(REVIEW_QUEUE, "dev-l") == 4
    # A device nobody flagged before enters at priority 1.
    act(client, "fresh", "flag", reason="merchant complaint")
    assert redis_client.zscore(REVIEW_QUEUE, "fresh") == 1
    assert redis_client.hget("risk:{d:fresh}:flags", "manual") == b"1"
    act(client, "fresh", "block")
    assert act(client, "fresh", "flag").status_code == 409


def test_invalid_actions_name_the_field(client: FlaskClient) -> None:
    cases = [
        ({"action": "block"}, "reason"),
        ({"action": "block", "reason": "   "}, "reason"),
        ({"action": "label", "reason": "r"}, "label"),
        ({"action": "label", "reason": "r", "label": "maybe"}, "label"),
        ({"action": "block", "reason": "r", "label": "fraud"}, "label"),
        ({"action": "unblock", "reason": "r", "hours": 2}, "hours"),
        ({"action": "delete", "reason": "r"}, "action"),
        ({"action": "block", "reason": "r", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        resp = client.post("/v1/review/devices/d/actions", json=body, headers=ANALYST)
        assert resp.status_code == 422, body
        assert field in resp.json["error"]["fields"], (body, resp.json)
    resp = client.post("/v1/review/devices/d/actions", data="{",
                       headers={**ANALYST, "Content-Type": "application/json"})
    assert resp.status_code == 400
    resp = client.post("/v1/review/devices/d/actions", data="x", headers=ANALYST)
    assert resp.status_code == 415


def test_roles_an_issuer_cannot_review_and_an_analyst_cannot_decide(client: FlaskClient) -> None:
    body = {"action": "block", "reason": "r"}
    assert client.post("/v1/review/devices/d/actions", json=body, headers=ISSUER).status_code == 403
    assert client.post("/v1/review/devices/d/actions", json=body).status_code == 401
    for path in ("/v1/review/devices/d", "/v1/review/devices/d/graph", "/v1/audit", "/v1/audit/verify"):
        assert client.get(path, headers=ISSUER).status_code == 403, path
    decision = {"event_id": "e", "device_id": "d", "user_id": "u", "coupon_id": "c"}
    resp = client.post("/v1/decisions", json=decision, headers=ANALYST)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"


def test_an_action_and_its_audit_entry_are_written_together(client: FlaskClient, redis_client: redis.Redis,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """If the transaction fails, neither the ban nor its audit entry exists."""
    from riskservice.review import audit

    def broken_write(pipe: object, entry: dict[str, object]) -> None:
        raise redis.ConnectionError("redis went away mid-action")

    entries_before = redis_client.hlen(audit.ENTRIES)
    monkeypatch.setattr(audit, "write_entry", broken_write)
    resp = client.post("/v1/review/devices/dev-x/actions", json={"action": "block", "reason": "farm"},
                       headers=ANALYST)
    assert resp.status_code == 503
    assert not redis_client.exists("risk:{d:dev-x}:ban")
    assert redis_client.hlen(audit.ENTRIES) == entries_before
    assert not redis_client.exists(audit.index_key("entity", "device:dev-x"))
    assert redis_client.hget("risk:{d:dev-x}:review", "status") is None


def test_a_ban_that_ran_out_no_longer_counts_as_blocked(client: FlaskClient, clock: ManualClock) -> None:
    share(client, device_id="temp")
    assert act(client, "temp", "block", reason="cool off", hours=1).json["status"] == "blocked"
    clock.advance(3601)
    dossier = client.get("/v1/review/devices/temp", headers=ANALYST).json
    assert dossier["status"] == "open"
    # Flagging needs no unblock once the ban has run out.
    assert act(client, "temp", "flag", reason="look again").json["status"] == "open"
