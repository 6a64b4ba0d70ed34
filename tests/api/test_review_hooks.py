"""What the decision path leaves for analysts: refusal counts, the review queue, the allowlist."""

from __future__ import annotations

import redis
from flask import Flask
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from riskservice.limits.keys import REVIEW_QUEUE
from tests.api.helpers import codes, share


def test_refusals_are_counted_and_queue_the_device_past_the_threshold(client: FlaskClient,
                                                                      redis_client: redis.Redis) -> None:
    share(client, device_id="bad", recipient_count=20)  # challenge: 1 point
    assert redis_client.zscore(REVIEW_QUEUE, "bad") is None
    share(client, device_id="bad", text="转发抽奖")  # block: 2 points, 3 in all
    assert redis_client.zscore(REVIEW_QUEUE, "bad") == 3
    flags = redis_client.hgetall("risk:{d:bad}:flags")
    assert flags[b"fan_out"] == b"1" and flags[b"sensitive_copy"] == b"1" and flags[b"_points"] == b"3"
    share(client, device_id="good")
    assert redis_client.zscore(REVIEW_QUEUE, "good") is None


def test_resolved_devices_are_not_requeued(client: FlaskClient, redis_client: redis.Redis) -> None:
    redis_client.hset("risk:{d:done}:review", mapping={"status": "labelled", "label": "legit"})
    for _ in range(3):
        share(client, device_id="done", text="转发抽奖")
    assert redis_client.zscore(REVIEW_QUEUE, "done") is None


def test_anomalous_devices_are_queued_at_write_back(redis_client: redis.Redis) -> None:
    rows = [{"node": "farm", "kind": "device", "kol": 0.0, "anomaly": 0.92, "signals": []},
            {"node": "fine", "kind": "device", "kol": 0.0, "anomaly": 0.2, "signals": []}]
    write_back(redis_client, rows, queue_threshold=0.8)
    assert redis_client.zscore(REVIEW_QUEUE, "farm") == 9.2
    assert redis_client.zscore(REVIEW_QUEUE, "fine") is None
    assert redis_client.hget("risk:{d:farm}:flags", "graph_anomaly") == b"1"


def test_allowlist_skips_challenges_but_not_blocks(client: FlaskClient, app: Flask,
                                                   redis_client: redis.Redis) -> None:
    redis_client.hset("risk:{d:vip}:allow", mapping={"reason": "store terminal", "actor": "a1"})
    resp = share(client, device_id="vip", recipient_count=30)
    assert resp.json["decision"] == "allow"
    assert codes(resp, "shadow") == ["fan_out"]
    assert share(client, device_id="vip", text="转发抽奖").json["decision"] == "block"
    for i in range(49):
        share(client, device_id="vip", user_id=f"u{i % 5}")
    assert codes(share(client, device_id="vip", user_id="u1")) == ["device_daily_cap"]


def test_refusals_never_lower_a_graph_priority(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [{"node": "hot", "kind": "device", "kol": 0.0, "anomaly": 0.92, "signals": []}],
               queue_threshold=0.8)
    for _ in range(2):
        share(client, device_id="hot", text="转发抽奖")  # 4 refusal points
    assert redis_client.zscore(REVIEW_QUEUE, "hot") == 9.2
