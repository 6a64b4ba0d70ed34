"""Signals as rules, end to end on a real Redis: shares through the API, the
consumer following the stream, and the next decision judging its values."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from riskservice.limits.clock import ManualClock
from riskservice.signals.consumer import SignalConsumer
from tests.api.helpers import codes, share
from tests.conftest import ANALYST
from tests.redis_server import RedisServer
from tests.signals.conftest import app_with_merchants

MERCHANTS = """
merchants:
  strict: {coupon_repeat: {threshold: 3}}
  watching: {coupon_repeat: {shadow: true}}
"""


@pytest.fixture
def app(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, clock: ManualClock) -> Flask:
    return app_with_merchants(redis_server, tmp_path, clock, MERCHANTS)


# Shares of one coupon this far apart are separate sittings (coupon_repeat counts sittings).
SITTING = 3601


def shares(client: FlaskClient, consumer: SignalConsumer, clock: ManualClock, n: int, step: int = 1,
           **fields: object) -> list[str]:
    """``n`` shares ``step`` seconds apart, the consumer catching up after each; their decisions."""
    out = []
    for _ in range(n):
        clock.advance(step)
        out.append(share(client, **fields).json["decision"])
        consumer.poll()
    return out


def test_a_signal_refuses_with_its_observed_value_and_threshold(client: FlaskClient, consumer: SignalConsumer,
                                                                clock: ManualClock) -> None:
    assert shares(client, consumer, clock, 3, SITTING, coupon_id="cp-9") == ["allow"] * 3
    # Pushing it to more chats in the same sitting is not another sitting.
    assert shares(client, consumer, clock, 3, coupon_id="cp-9") == ["allow"] * 3
    assert shares(client, consumer, clock, 1, SITTING, coupon_id="cp-9") == ["allow"]
    resp = share(client, coupon_id="cp-9")
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    (reason,) = resp.json["reasons"]
    assert reason == {"code": "coupon_repeat", "action": "challenge", "challenge": "captcha",
                      "message": "shared one coupon in 4 sittings an hour or more apart in 72 h, at or above 4",
                      "observed": 4, "limit": 4,
                      "window_s": 259_200, "retry_after_s": None}
    # The sharer's value is on its device: another account there is not affected.
    assert share(client, coupon_id="cp-9", user_id="user-2").json["decision"] == "allow"


def test_per_merchant_thresholds_and_shadow_mode(client: FlaskClient, consumer: SignalConsumer,
                                                 clock: ManualClock) -> None:
    assert shares(client, consumer, clock, 4, SITTING, merchant_id="strict") == ["allow"] * 3 + ["challenge"]
    resp = share(client, merchant_id="strict", user_id="user-1")
    assert [(r["code"], r["observed"], r["limit"]) for r in resp.json["reasons"]] == [("coupon_repeat", 4, 3)]
    assert shares(client, consumer, clock, 5, SITTING, merchant_id="watching", user_id="user-3",
                  device_id="dev-3") == ["allow"] * 5
    resp = share(client, merchant_id="watching", user_id="user-3", device_id="dev-3")
    assert (resp.json["decision"], codes(resp), codes(resp, "shadow")) == ("allow", [], ["coupon_repeat"])


def test_refusals_reach_metrics_and_the_review_queue(client: FlaskClient, consumer: SignalConsumer,
                                                     clock: ManualClock) -> None:
    shares(client, consumer, clock, 7, SITTING, coupon_id="cp-1", device_id="dev-q")
    queue = client.get("/v1/review/devices", headers=ANALYST).json
    assert [d["device_id"] for d in queue["devices"]] == ["dev-q"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'risk_rule_hits_total{mode="enforced",rule="coupon_repeat"} 3.0' in metrics


def test_the_stronger_of_a_signal_and_the_graph_score_is_the_reason(client: FlaskClient, app: Flask,
                                                                    consumer: SignalConsumer, clock: ManualClock,
                                                                    redis_client: redis.Redis) -> None:
    write_back(redis_client, [{"node": "user-1", "kind": "user", "kol": 0.0, "anomaly": 0.9, "signals": []}])
    app.extensions["risk"].graph_versions.invalidate()
    shares(client, consumer, clock, 4, SITTING, coupon_id="cp-2")
    clock.advance(SITTING)
    # coupon_repeat 4 / 4 = 1.0 is weaker than the anomaly 0.9 / 0.8: one reason, the graph's.
    assert codes(share(client, coupon_id="cp-2")) == ["graph_anomaly"]
    consumer.poll()
    # 5 / 4 = 1.25 is stronger.
    resp = share(client, coupon_id="cp-2")
    assert [(r["code"], r["observed"]) for r in resp.json["reasons"]] == [("coupon_repeat", 5)]


def test_a_restarted_consumer_rebuilds_its_state_from_the_stream(client: FlaskClient, consumer: SignalConsumer,
                                                                 clock: ManualClock,
                                                                 redis_client: redis.Redis) -> None:
    for i in range(4):
        shares(client, consumer, clock, 1, user_id=f"acct-{i}", device_id="farm")
    assert redis_client.hgetall("risk:{d:farm}:sig") == {b"r": f"4@{clock.now_ms() - 3000 + 30 * 86_400_000}".encode()}
    redis_client.delete("risk:{d:farm}:sig")
    again = SignalConsumer(redis_client, name="signals-2")
    assert again.start(now_ms=clock.now_ms()) == 4
    assert redis_client.hget("risk:{d:farm}:sig", "r") == f"4@{clock.now_ms() - 3000 + 30 * 86_400_000}".encode()
    # It follows the stream from where the rebuild stopped: the fifth account flags the device.
    clock.advance(1)
    share(client, user_id="acct-4", device_id="farm")
    assert again.poll() == 1
    resp = share(client, user_id="acct-5", device_id="farm")
    # (the 24-hour rule on accounts per device fires too: a sixth account in a day)
    assert {r["code"]: (r["observed"], r["limit"]) for r in resp.json["reasons"]} == {
        "device_rotation": (5, 5), "device_many_users": (6, 5)}
