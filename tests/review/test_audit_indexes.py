"""/v1/audit/verify covers the indexes the trail is served from: removing, adding or moving an entry is found."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import AuditVerification
from riskservice.limits.clock import ManualClock
from riskservice.review import audit
from tests.conftest import ANALYST
from tests.review.helpers import ANALYST_ID, act

ENTITY_A = audit.index_key("entity", "device:farm/a")
ENTITY_B = audit.index_key("entity", "device:b")
ACTOR = audit.index_key("actor", ANALYST_ID)


@pytest.fixture(autouse=True)
def trail_of_seven(client: FlaskClient, redis_client: redis.Redis, clock: ManualClock) -> None:
    """Seven entries, 1 to 7: six on device farm/a, one (4) on device b, all by the test analyst."""
    keys = list(redis_client.scan_iter(match="risk:audit*"))
    if keys:
        redis_client.delete(*keys)
    for i, (device, action) in enumerate((("farm/a", "flag"), ("farm/a", "block"), ("farm/a", "unblock"),
                                          ("b", "flag"), ("farm/a", "allowlist"), ("farm/a", "flag"),
                                          ("farm/a", "block"))):
        resp = client.post("/v1/review/device/actions", query_string={"device_id": device}, headers=ANALYST,
                           json={"action": action, "reason": f"step {i}"})
        assert resp.status_code == 200, resp.json
        clock.advance(60)


def verify(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/v1/audit/verify", headers=ANALYST)
    assert resp.status_code == 200
    AuditVerification.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def history(client: FlaskClient, entity: str) -> list[int]:
    resp = client.get("/v1/audit", query_string={"entity": entity}, headers=ANALYST)
    return [e["seq"] for e in resp.json["entries"]]


def test_an_intact_trail_verifies(client: FlaskClient) -> None:
    assert verify(client)["ok"] is True and verify(client)["checked"] == 7
    assert history(client, "device:farm/a") == [7, 6, 5, 3, 2, 1]


def test_removing_a_devices_index_entries_is_found(client: FlaskClient, redis_client: redis.Redis) -> None:
    redis_client.zrem(ENTITY_A, "1", "2", "3", "5", "6", "7")
    assert history(client, "device:farm/a") == []  # what an analyst would see: no history at all
    report = verify(client)
    assert report["ok"] is False and report["checked"] == 7
    assert report["broken"] == {"seq": 1, "problem": "index", "index": ENTITY_A,
                                "message": f"entry 1 is missing from index {ENTITY_A}"}


def test_adding_an_entry_to_another_devices_index_is_found(client: FlaskClient, redis_client: redis.Redis) -> None:
    redis_client.zadd(ENTITY_B, {"6": 6})
    report = verify(client)
    assert report["broken"] == {"seq": 6, "problem": "index", "index": ENTITY_B,
                                "message": f"index {ENTITY_B} lists entry 6, which does not belong there"}


def test_moving_an_entry_between_devices_is_found(client: FlaskClient, redis_client: redis.Redis) -> None:
    redis_client.zrem(ENTITY_A, "5")
    redis_client.zadd(ENTITY_B, {"5": 5})
    assert history(client, "device:b") == [5, 4]
    report = verify(client)
    assert report["ok"] is False
    assert (report["broken"]["seq"], report["broken"]["problem"]) == (5, "index")


def test_an_index_of_an_entity_with_no_entries_is_found(client: FlaskClient, redis_client: redis.Redis) -> None:
    ghost = audit.index_key("entity", "device:ghost")
    redis_client.zadd(ghost, {"2": 2})
    report = verify(client)
    assert report["broken"]["index"] == ghost and report["broken"]["seq"] == 2


def test_an_entry_beyond_the_head_in_an_index_is_found(client: FlaskClient, redis_client: redis.Redis) -> None:
    # Not yet in the chain: ignored (an append racing with the check), whatever the index.
    redis_client.zadd(ENTITY_A, {"8": 8})
    assert verify(client)["ok"] is True


@pytest.mark.parametrize(("key", "change"), [
    (ACTOR, lambda r: r.zrem(ACTOR, "4")),
    (ENTITY_A, lambda r: r.zadd(ENTITY_A, {"3": 99})),           # re-ranked: served out of order
    (audit.TIME, lambda r: r.zadd(audit.TIME, {"2": 0})),        # moved in time: since/until would miss it
    (audit.TIME, lambda r: r.zrem(audit.TIME, "7")),
    (ENTITY_A, lambda r: r.zadd(ENTITY_A, {"junk": 1})),
])
def test_actor_time_and_score_tampering_is_found(client: FlaskClient, redis_client: redis.Redis, key: str,
                                                 change: Any) -> None:
    change(redis_client)
    report = verify(client)
    assert report["ok"] is False and report["broken"]["problem"] == "index"
    assert report["broken"]["index"] == key


def test_trimmed_entries_leave_no_false_alarm(client: FlaskClient, redis_client: redis.Redis,
                                             clock: ManualClock) -> None:
    clock.advance(audit.RETENTION_MS // 1000 - 150)  # entries 1 to 5 (the first 4 min) are now older than 180 days
    act(client, "c", "flag")
    assert redis_client.hlen(audit.ENTRIES) == 3
    report = verify(client)
    assert report["ok"] is True and report["anchor"]["seq"] == 5
    assert history(client, "device:farm/a") == [7, 6]
    # A trimmed entry left behind in an index is not part of the chain any more.
    redis_client.zadd(ENTITY_A, {"2": 2})
    assert verify(client)["broken"]["message"] == f"index {ENTITY_A} lists entry 2, which is not in the chain"
