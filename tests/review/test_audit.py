"""The audit trail: filters, pages, the hash chain and its verification, trimming, policy changes."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import AuditPage, AuditVerification
from riskservice.limits.clock import ManualClock
from riskservice.review import audit
from tests.conftest import ADMIN, ANALYST
from tests.review.helpers import ANALYST_ID, act

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def empty_trail(client: FlaskClient, redis_client: redis.Redis) -> None:
    """Start from an empty trail: the app audits the policy version it starts with."""
    keys = list(redis_client.scan_iter(match="risk:audit*"))
    if keys:
        redis_client.delete(*keys)


def trail(client: FlaskClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/audit", query_string=params, headers=ANALYST)
    assert resp.status_code == 200, resp.json
    AuditPage.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def verify(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/v1/audit/verify", headers=ANALYST)
    assert resp.status_code == 200
    AuditVerification.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def five_actions(client: FlaskClient, clock: ManualClock) -> None:
    for device, action in (("a", "block"), ("b", "flag"), ("a", "unblock"), ("c", "flag"), ("a", "allowlist")):
        act(client, device, action, reason=f"{action} {device}")
        clock.advance(60)


def test_entries_are_chained_and_filtered(client: FlaskClient, clock: ManualClock) -> None:
    start = clock.now_ms()
    five_actions(client, clock)
    act(client, "a", "label", label="legit", reason="looked fine")
    client.post("/v1/review/devices/z/actions", json={"action": "flag", "reason": "by admin"}, headers=ADMIN)
    entries = trail(client)["entries"]
    assert [e["seq"] for e in entries] == [7, 6, 5, 4, 3, 2, 1]
    for newer, older in pairwise(entries):
        assert newer["prev"] == older["hash"]
        assert newer["hash"] == audit.entry_hash(older["hash"], newer)
    assert entries[-1]["prev"] == audit.GENESIS
    assert [e["action"] for e in trail(client, entity="device:a")["entries"]] == [
        "label", "allowlist", "unblock", "block"]
    assert [e["entity"] for e in trail(client, actor=ANALYST_ID, entity="device:z")["entries"]] == []
    assert len(trail(client, actor=ANALYST_ID)["entries"]) == 6
    window = trail(client, since=start + 60_000, until=start + 180_000)["entries"]
    assert [e["seq"] for e in window] == [3, 2]
    assert verify(client)["ok"] is True and verify(client)["checked"] == 7


def test_pages_follow_the_cursor(client: FlaskClient, clock: ManualClock) -> None:
    five_actions(client, clock)
    first = trail(client, limit=2)
    second = trail(client, limit=2, cursor=first["next_cursor"])
    third = trail(client, limit=2, cursor=second["next_cursor"])
    assert [e["seq"] for p in (first, second, third) for e in p["entries"]] == [5, 4, 3, 2, 1]
    assert third["next_cursor"] is None
    bad = client.get("/v1/audit", query_string={"since": "yesterday"}, headers=ANALYST)
    assert bad.status_code == 400 and "since" in bad.json["error"]["fields"]


def _entry(r: redis.Redis, seq: int) -> dict[str, Any]:
    return orjson.loads(r.hget(audit.ENTRIES, str(seq)))  # type: ignore[no-any-return]


def test_verify_finds_an_edited_entry(client: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    five_actions(client, clock)
    entry = _entry(redis_client, 3)
    entry["reason"] = "nothing to see"
    redis_client.hset(audit.ENTRIES, "3", orjson.dumps(entry))
    broken = verify(client)
    assert broken["ok"] is False and broken["broken"]["seq"] == 3 and broken["broken"]["problem"] == "altered"
    # Re-hashing the edited entry only moves the break to the next link.
    entry["hash"] = audit.entry_hash(entry["prev"], entry)
    redis_client.hset(audit.ENTRIES, "3", orjson.dumps(entry))
    assert verify(client)["broken"]["seq"] == 4 and verify(client)["broken"]["problem"] == "unlinked"


def test_verify_finds_a_deleted_entry(client: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    five_actions(client, clock)
    redis_client.hdel(audit.ENTRIES, "2")
    assert verify(client)["broken"] == {"seq": 2, "problem": "missing", "message": "entry 2 is missing"}
    # Closing the gap by renumbering is caught too.
    for seq in (3, 4, 5):
        redis_client.hset(audit.ENTRIES, str(seq - 1), redis_client.hget(audit.ENTRIES, str(seq)))
    redis_client.hdel(audit.ENTRIES, "5")
    assert verify(client)["broken"]["seq"] == 2 and verify(client)["broken"]["problem"] == "misnumbered"


def test_verify_finds_an_inserted_entry(client: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    five_actions(client, clock)
    # A forged entry properly chained after entry 2, the later ones shifted up (and renumbered).
    forged = {**_entry(redis_client, 3), "reason": "forged", "prev": _entry(redis_client, 2)["hash"]}
    forged["hash"] = audit.entry_hash(forged["prev"], forged)
    later = [_entry(redis_client, s) for s in (3, 4, 5)]
    redis_client.hset(audit.ENTRIES, "3", orjson.dumps(forged))
    for e in later:
        e["seq"] += 1
        redis_client.hset(audit.ENTRIES, str(e["seq"]), orjson.dumps(e))
    redis_client.hset(audit.HEAD, mapping={"seq": 6, "hash": later[-1]["hash"]})
    broken = verify(client)["broken"]
    assert broken["seq"] == 4 and broken["problem"] in ("altered", "unlinked")


def test_verify_finds_an_entry_appended_behind_the_heads_back(client: FlaskClient, clock: ManualClock,
                                                             redis_client: redis.Redis) -> None:
    five_actions(client, clock)
    extra = {**_entry(redis_client, 5), "seq": 6, "prev": _entry(redis_client, 5)["hash"]}
    extra["hash"] = audit.entry_hash(extra["prev"], extra)
    redis_client.hset(audit.ENTRIES, "6", orjson.dumps(extra))
    assert verify(client)["broken"]["seq"] == 6 and verify(client)["broken"]["problem"] == "extra"


def test_old_entries_are_trimmed_and_the_rest_still_verifies(client: FlaskClient, clock: ManualClock,
                                                             redis_client: redis.Redis) -> None:
    five_actions(client, clock)
    clock.advance(170 * DAY_MS / 1000)
    act(client, "late", "flag", reason="sixth")
    clock.advance(11 * DAY_MS / 1000)  # the first five are now older than 180 days; the sixth is not
    act(client, "later", "flag", reason="seventh")  # appending trims
    assert [e["seq"] for e in trail(client)["entries"]] == [7, 6]
    report = verify(client)
    assert report["ok"] is True and report["checked"] == 2 and report["first_seq"] == 6
    assert report["anchor"]["seq"] == 5
    assert trail(client, entity="device:a")["entries"] == []
    # Tampering after a trim is still found.
    redis_client.hdel(audit.ENTRIES, "6")
    assert verify(client)["broken"]["seq"] == 6


def test_policy_changes_are_audited_once_across_workers(redis_client: redis.Redis, clock: ManualClock) -> None:
    first = audit.note_policy(redis_client, "default@aaa", now_ms=clock.now_ms(), source="config/policy.yaml")
    assert first is not None and first["entity"] == "policy" and first["details"]["to"] == "default@aaa"
    # Every worker reloads on its own: only the first one to report a version writes it.
    assert audit.note_policy(redis_client, "default@aaa", now_ms=clock.now_ms()) is None
    second = audit.note_policy(redis_client, "default@bbb", now_ms=clock.now_ms())
    assert second is not None and second["details"]["from"] == "default@aaa" and second["prev"] == first["hash"]
