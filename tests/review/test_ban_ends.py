"""An analyst's timed ban that ended: the device leaves the ``blocked`` list and
is queued again by its refusal points (QA D4), through the HTTP API on a real Redis."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import REVIEW_BAN_ENDS, REVIEW_QUEUE
from riskservice.review.queue import status_key
from tests.api.helpers import share
from tests.conftest import ANALYST, ISSUER
from tests.review.helpers import act, flag, queue


def listed(client: FlaskClient, status: str) -> dict[str, float]:
    """Device -> priority (open) or resolution time (the others) of a status list."""
    devices = queue(client, status=status, limit=200)["devices"]
    return {d["device_id"]: d.get("priority", d.get("resolved_at")) for d in devices}


def dossier(client: FlaskClient, device: str) -> dict:  # type: ignore[type-arg]
    resp = client.get(f"/v1/review/devices/{device}", headers=ANALYST)
    assert resp.status_code == 200, resp.json
    return resp.json  # type: ignore[no-any-return]


def test_an_ended_ban_leaves_the_blocked_list_and_the_device_is_queued_by_its_points(
        client: FlaskClient, clock: ManualClock) -> None:
    # QA D4: cool-9 with 6 points, blocked for 0.001 h; cool-3 with 5 points, open
    flag(client, "cool-9", blocks=0, challenges=6)
    flag(client, "cool-3", blocks=0, challenges=5)
    assert act(client, "cool-9", "block", hours=0.001).json["status"] == "blocked"
    assert "cool-9" in listed(client, "blocked") and "cool-9" not in listed(client, "open")
    clock.advance(4)  # 3.6 s: the ban is over
    assert listed(client, "open") == {"cool-9": 6, "cool-3": 5}
    assert "cool-9" not in listed(client, "blocked")
    d = dossier(client, "cool-9")
    assert (d["status"], d["in_queue"], d["priority"], d["review"]["status"]) == ("open", True, 6, "open")


def test_the_dossier_settles_its_device_too(client: FlaskClient, clock: ManualClock,
                                              redis_client: redis.Redis) -> None:
    flag(client, "dev-d", blocks=2)  # 4 points
    act(client, "dev-d", "block", hours=1)
    clock.advance(3601)
    d = dossier(client, "dev-d")
    assert (d["status"], d["in_queue"], d["priority"]) == ("open", True, 4)
    assert redis_client.zscore(status_key("blocked"), "dev-d") is None
    assert redis_client.zscore(REVIEW_BAN_ENDS, "dev-d") is None


def test_below_the_threshold_the_next_refusal_that_reaches_it_queues_the_device(
        client: FlaskClient, clock: ManualClock) -> None:
    flag(client, "dev-l", blocks=0, challenges=1)  # 1 point (the queue takes 3)
    act(client, "dev-l", "block", hours=1)
    clock.advance(3601)
    assert "dev-l" not in listed(client, "blocked") and "dev-l" not in listed(client, "open")
    assert dossier(client, "dev-l")["status"] == "open"
    flag(client, "dev-l", blocks=1)  # 3 points
    assert listed(client, "open")["dev-l"] == 3


def test_refusals_after_the_end_and_before_any_read_queue_the_device_once_read(
        client: FlaskClient, clock: ManualClock) -> None:
    act(client, "dev-r", "block", hours=1)
    clock.advance(3601)
    flag(client, "dev-r", blocks=2)  # refused after the end, while still listed as blocked: 4 points
    assert listed(client, "open")["dev-r"] == 4 and "dev-r" not in listed(client, "blocked")


def test_a_cool_down_after_the_end_is_no_analyst_ban(client: FlaskClient, clock: ManualClock) -> None:
    act(client, "dev-c", "block", hours=1)
    clock.advance(3601)
    # five failed challenges after the end, before any read: the rule's cool-down, which leaves the status alone
    ids = [share(client, device_id="dev-c", user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    for did in ids:
        client.post(f"/v1/challenges/{did}", json={"passed": False, "kind": "sms"}, headers=ISSUER)
    assert "dev-c" not in listed(client, "blocked") and listed(client, "open") == {"dev-c": 5}
    d = dossier(client, "dev-c")
    assert (d["status"], d["cooling_down"]) == ("open", True)


def test_a_device_flagged_by_hand_is_queued_again_once_its_ban_ends(client: FlaskClient, clock: ManualClock) -> None:
    """No refusal points, only an analyst's hand flag (QA13 D6): the flag queues it again."""
    assert act(client, "hand-1", "flag").json["status"] == "open"
    act(client, "hand-1", "block", hours=0.001)
    clock.advance(4)
    assert listed(client, "open").get("hand-1") == 1
    assert "hand-1" not in listed(client, "blocked")


def test_a_labelled_device_is_listed_as_labelled_once_its_ban_ends(client: FlaskClient, clock: ManualClock) -> None:
    flag(client, "dev-f", blocks=2)
    act(client, "dev-f", "block", hours=1)
    ended = clock.now_ms() + 3_600_000
    assert act(client, "dev-f", "label", label="fraud").json["status"] == "blocked"
    clock.advance(3601)
    assert listed(client, "labelled") == {"dev-f": ended}
    assert "dev-f" not in listed(client, "blocked") and "dev-f" not in listed(client, "open")


def test_a_ban_without_an_end_or_not_yet_ended_stays_listed(client: FlaskClient, clock: ManualClock) -> None:
    flag(client, "dev-p", blocks=2)
    act(client, "dev-p", "block")
    flag(client, "dev-x", blocks=2)
    act(client, "dev-x", "block", hours=1)
    clock.advance(1800)
    act(client, "dev-x", "block", hours=2)  # extended before it ended
    clock.advance(1801)
    assert set(listed(client, "blocked")) == {"dev-p", "dev-x"} and listed(client, "open") == {}
    clock.advance(2 * 3600)
    assert set(listed(client, "blocked")) == {"dev-p"} and listed(client, "open") == {"dev-x": 4}


def test_an_unblock_or_an_allowlist_takes_the_end_out_of_the_index(client: FlaskClient,
                                                                       redis_client: redis.Redis) -> None:
    act(client, "dev-u", "block", hours=1)
    act(client, "dev-a", "block", hours=1)
    assert redis_client.zcard(REVIEW_BAN_ENDS) == 2
    act(client, "dev-u", "unblock")
    act(client, "dev-a", "allowlist")
    act(client, "dev-b", "block", hours=1)
    act(client, "dev-b", "block")  # now without an end
    assert redis_client.zcard(REVIEW_BAN_ENDS) == 0


def test_timed_bans_set_before_the_index_are_indexed_once(client: FlaskClient, clock: ManualClock,
                                                            redis_client: redis.Redis) -> None:
    # as the previous release left them: listed as blocked, with no index entry
    flag(client, "old-1", blocks=2)
    flag(client, "old-2", blocks=2)
    now = clock.now_ms()
    for device, ban in (("old-1", {"reason": "r", "until": now - 1}), ("old-2", {"reason": "r", "until": 0})):
        redis_client.hset(f"risk:{{d:{device}}}:ban", mapping=ban)  # type: ignore[arg-type]
        redis_client.hset(f"risk:{{d:{device}}}:review", "status", "blocked")
        redis_client.zrem(REVIEW_QUEUE, device)
        redis_client.zadd(status_key("blocked"), {device: now - 10})
    redis_client.zadd(status_key("blocked"), {"old-3": now - 10})  # its ban key gone: ended over a day ago
    redis_client.hset("risk:{d:old-3}:review", "status", "blocked")
    assert set(listed(client, "blocked")) == {"old-2"}
    assert listed(client, "open") == {"old-1": 4}
    assert share(client, device_id="old-3").json["decision"] == "allow"
    assert dossier(client, "old-3")["status"] == "open"
