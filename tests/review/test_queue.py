"""GET /v1/review/devices: worst first, evidence per device, cursor pages, filters, status lists."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import ReviewQueue
from riskservice.graph_store import write_back
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import REVIEW_QUEUE
from tests.conftest import ADMIN, ANALYST, ISSUER
from tests.review.helpers import act, flag, queue


def test_worst_first_with_reasons_points_last_seen_and_status(client: FlaskClient, clock: ManualClock) -> None:
    flag(client, "mild", blocks=1, challenges=1)  # 3 points
    clock.advance(60)
    flag(client, "worse", blocks=3)  # 6 points
    seen = clock.now_ms()
    page = queue(client)
    ReviewQueue.model_validate(page)
    assert [d["device_id"] for d in page["devices"]] == ["worse", "mild"]
    worse, mild = page["devices"]
    assert worse["priority"] == 6 and worse["points"] == 6 and worse["reasons"] == {"sensitive_copy": 3}
    assert mild["reasons"] == {"fan_out": 1, "sensitive_copy": 1}
    assert worse["last_seen"] == seen and worse["status"] == "open" and worse["label"] is None
    assert page["total"] == 2 and page["next_cursor"] is None


def test_graph_anomaly_devices_are_ordered_with_refusals(client: FlaskClient, redis_client: redis.Redis) -> None:
    flag(client, "refused", blocks=2)  # 4 points
    write_back(redis_client, [{"node": "farm", "kind": "device", "kol": 0.0, "anomaly": 0.95, "signals": []}],
               queue_threshold=0.8)
    devices = queue(client)["devices"]
    assert [(d["device_id"], d["priority"]) for d in devices] == [("farm", 9.5), ("refused", 4.0)]
    assert devices[0]["reasons"] == {"graph_anomaly": 1} and devices[0]["anomaly"] == 0.95


def test_cursor_pages_cover_the_queue_once_even_when_it_changes(client: FlaskClient,
                                                               redis_client: redis.Redis) -> None:
    redis_client.zadd(REVIEW_QUEUE, {f"d{i:02}": 5 if i < 6 else 3 for i in range(10)})
    first = queue(client, limit=4)
    assert [d["device_id"] for d in first["devices"]] == ["d05", "d04", "d03", "d02"]
    # The cursor's device leaves and a new worse one arrives: neither repeats nor skips the rest.
    redis_client.zrem(REVIEW_QUEUE, "d02")
    redis_client.zadd(REVIEW_QUEUE, {"new": 9})
    second = queue(client, limit=4, cursor=first["next_cursor"])
    assert [d["device_id"] for d in second["devices"]] == ["d01", "d00", "d09", "d08"]
    third = queue(client, limit=4, cursor=second["next_cursor"])
    assert [d["device_id"] for d in third["devices"]] == ["d07", "d06"]
    assert third["next_cursor"] is None


def test_filter_by_reason(client: FlaskClient) -> None:
    flag(client, "copy", blocks=2)
    flag(client, "fan", blocks=0, challenges=3)
    assert [d["device_id"] for d in queue(client, reason="fan_out")["devices"]] == ["fan"]
    assert [d["device_id"] for d in queue(client, reason="sensitive_copy")["devices"]] == ["copy"]
    assert queue(client, reason="device_velocity")["devices"] == []


def test_resolved_devices_leave_the_queue_and_are_listed_by_status(client: FlaskClient,
                                                                   redis_client: redis.Redis) -> None:
    for device in ("a", "b", "c", "d"):
        flag(client, device)
    assert act(client, "a", "block").status_code == 200
    assert act(client, "b", "allowlist").status_code == 200
    assert act(client, "c", "label", label="legit").status_code == 200
    assert [d["device_id"] for d in queue(client)["devices"]] == ["d"]
    assert redis_client.zscore(REVIEW_QUEUE, "a") is None
    for status, device in (("blocked", "a"), ("allowlisted", "b"), ("labelled", "c")):
        page = queue(client, status=status)
        assert [d["device_id"] for d in page["devices"]] == [device]
        assert page["devices"][0]["status"] == status and "resolved_at" in page["devices"][0]
    # A resolved device is not re-queued by later refusals.
    flag(client, "c", blocks=2)
    assert redis_client.zscore(REVIEW_QUEUE, "c") is None


def test_bad_parameters_and_roles(client: FlaskClient) -> None:
    assert client.get("/v1/review/devices", headers=ISSUER).status_code == 403
    assert client.get("/v1/review/devices").status_code == 401
    assert client.get("/v1/review/devices", headers=ADMIN).status_code == 200
    for params, field in (({"status": "done"}, "status"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                          ({"cursor": "nonsense"}, "cursor")):
        resp = client.get("/v1/review/devices", query_string=params, headers=ANALYST)
        assert resp.status_code == 400 and field in resp.json["error"]["fields"]
