"""The consumer's heartbeat: what a beat says at a given time, how often the
consumer beats and the lag it reports, and how /readyz and /metrics show it
(real Redis, the app's test client)."""

from __future__ import annotations

import os
import socket

import pytest
import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import Ready
from riskservice.limits.clock import ManualClock
from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.heartbeat import HEARTBEAT_KEY, Beat, Heartbeat, read_status, status_of, wall_ms
from tests.api.helpers import share


def beat(seen_ms: int, lag_ms: int = 0, phase: str = "following") -> Beat:
    return Beat("signals-1", 42, seen_ms=seen_ms, lag_ms=lag_ms, fed=7, started_ms=0, phase=phase)


@pytest.mark.parametrize(("the_beat", "now_ms", "state", "lag_s"), [
    (None, 5_000, "absent", None),
    (beat(100_000, lag_ms=30), 101_000, "ok", 0.03),
    (beat(100_000, lag_ms=5_000), 101_000, "ok", 5.0),
    (beat(100_000, lag_ms=5_001), 101_000, "lagging", 5.001),
    (beat(100_000, lag_ms=30), 110_000, "ok", 0.03),
    (beat(100_000, lag_ms=30), 110_001, "down", 0.03),
    (beat(100_000, phase="rebuilding"), 400_000, "starting", None),
    (beat(100_000, phase="rebuilding"), 1_000_001, "down", None),
])
def test_a_beat_is_judged_by_its_age_and_lag(the_beat: Beat | None, now_ms: int, state: str,
                                             lag_s: float | None) -> None:
    status = status_of(the_beat, now_ms)
    assert (status.state, status.lag_s) == (state, lag_s)
    if the_beat is not None:
        assert status.last_beat_s == (now_ms - the_beat.seen_ms) / 1000
        assert (status.name, status.pid, status.fed) == ("signals-1", 42, 7)


def test_beats_at_most_once_an_interval_with_the_lag_of_the_newest_entry(redis_client: redis.Redis) -> None:
    clock = ManualClock(1_000_000)
    heart = Heartbeat(redis_client, "signals-1", clock=clock.now_ms, interval_ms=1000)
    heart.rebuilding()
    assert read_status(redis_client, clock.now_ms()).state == "starting"
    clock.advance(0.5)
    # 3 entries, the newest added 800 ms before: beats (the first beat after the rebuild)
    assert heart.polled(3, clock.now_ms() - 800, backlog=False)
    status = read_status(redis_client, clock.now_ms())
    assert (status.state, status.lag_s, status.fed) == ("ok", 0.8, 3)
    clock.advance(0.4)
    assert not heart.polled(2, clock.now_ms() - 300, backlog=True)  # within the interval: no beat
    assert read_status(redis_client, clock.now_ms()).fed == 3
    clock.advance(0.6)
    assert heart.polled(0, None, backlog=True)  # nothing fed, more waiting: the newest applied ages
    status = read_status(redis_client, clock.now_ms())
    assert (status.state, status.lag_s, status.fed) == ("ok", 0.9, 5)
    clock.advance(5)
    assert heart.polled(0, None, backlog=True)  # stalled with more to read
    assert (read_status(redis_client, clock.now_ms()).state, read_status(redis_client, clock.now_ms()).lag_s) == (
        "lagging", 5.9)
    clock.advance(1)
    assert heart.polled(0, None, backlog=False)  # nothing left to read: caught up
    assert read_status(redis_client, clock.now_ms()).lag_s == 0.0
    assert 0 < redis_client.pttl(HEARTBEAT_KEY) <= 86_400_000
    clock.advance(10.001)
    assert read_status(redis_client, clock.now_ms()).state == "down"


def test_the_consumer_beats_with_how_old_what_it_applies_is(client: FlaskClient, redis_client: redis.Redis,
                                                            clock: ManualClock) -> None:
    # Its clock a minute ahead of Redis': what it applies is a minute old.
    ahead = SignalConsumer(redis_client, heartbeat=Heartbeat(redis_client, "signals-1",
                                                             clock=lambda: wall_ms() + 60_000))
    ahead.start(now_ms=clock.now_ms())
    share(client)
    assert ahead.poll() == 1
    status = read_status(redis_client, wall_ms() + 60_000)
    assert status.state == "lagging" and 59.0 <= status.lag_s <= 62.0, status  # type: ignore[operator]
    assert status.fed == 1
    # On time, it is ok.
    on_time = SignalConsumer(redis_client, name="signals-2")
    on_time.start()
    share(client, event_id="e-2")
    assert on_time.poll() >= 1
    status = read_status(redis_client)
    assert (status.state, status.name) == ("ok", "signals-2")
    assert status.lag_s is not None and status.lag_s < 5


def test_readyz_and_metrics_show_the_consumer(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["signals"] == {"state": "absent"}
    Ready.model_validate(body)  # as the OpenAPI document describes it
    assert b"risk_signals_consumer_up 0.0" in client.get("/metrics").data
    Heartbeat(redis_client, "signals-1").polled(4, wall_ms() - 250, backlog=False)
    signals = client.get("/readyz").get_json()["signals"]
    assert signals["state"] == "ok" and signals["fed"] == 4 and 0.25 <= signals["lag_s"] < 5
    assert signals["host"] == socket.gethostname() and signals["pid"] == os.getpid()
    text = client.get("/metrics").data.decode()
    assert "risk_signals_consumer_up 1.0" in text
    assert "risk_signals_consumer_lag_seconds " in text and "risk_signals_consumer_last_beat_age_seconds " in text
    # A consumer whose beats stopped (dead, or cut off from Redis) is down: the service stays ready.
    redis_client.hset(HEARTBEAT_KEY, "seen_ms", str(wall_ms() - 60_000))
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["signals"]["state"] == "down"
    Ready.model_validate(body)
    assert b"risk_signals_consumer_up 0.0" in client.get("/metrics").data
