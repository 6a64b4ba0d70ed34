"""The consumer's delivery on one real Redis: a re-delivered entry is fed
once, the group starts after the rebuild's window without losing what came
meanwhile, and writes wait for a Redis that does not answer."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from flask.testing import FlaskClient

from riskservice.limits.client import connect
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import EVENTS
from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.engine import Write
from tests.api.helpers import share
from tests.redis_server import RedisServer


def test_entries_delivered_again_are_fed_once(client: FlaskClient, redis_client: redis.Redis,
                                              clock: ManualClock) -> None:
    consumer = SignalConsumer(redis_client)
    consumer.start(now_ms=clock.now_ms())
    for _ in range(3):  # three sittings of one coupon (coupon_repeat counts sittings an hour apart)
        clock.advance(3601)
        share(client, coupon_id="cp-7")
    assert consumer.poll() == 3
    value = redis_client.hget("risk:{d:dev-1}:sig", "c|user-1")
    assert value is not None and value.startswith(b"3@")
    # As a promoted replica whose copy of the group's position lagged would do.
    redis_client.xgroup_setid(EVENTS, "signals", id="0")
    assert consumer.poll() == 0 and consumer.duplicates == 3
    assert redis_client.hget("risk:{d:dev-1}:sig", "c|user-1") == value
    clock.advance(3601)
    share(client, coupon_id="cp-7")
    assert consumer.poll() == 1
    assert redis_client.hget("risk:{d:dev-1}:sig", "c|user-1").startswith(b"4@")  # type: ignore[union-attr]


def test_a_start_with_nothing_in_the_window_misses_nothing_after_it(client: FlaskClient,
                                                                    redis_client: redis.Redis,
                                                                    clock: ManualClock) -> None:
    consumer = SignalConsumer(redis_client)
    assert consumer.start() == 0  # (the Redis clock: the stream is empty)
    # The group was placed just before the window's start, not at the stream's end:
    # what is recorded after the rebuild read is delivered.
    assert redis_client.xinfo_groups(EVENTS)[0]["last-delivered-id"].endswith(b"-18446744073709551615")
    share(client)
    assert consumer.poll() == 1


def test_writes_wait_while_redis_does_not_answer(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        consumer = SignalConsumer(connect(server.url, 400))
        consumer.start(now_ms=0)
        server.pause()
        try:
            consumer.write([Write("risk:{d:d1}:sig", "r", "5@9"), Write("risk:{d:d1}:sig", "r", "6@9")])
            assert consumer.pending == {("risk:{d:d1}:sig", "r"): "6@9"} and consumer.writes == 0
        finally:
            server.resume()
        # It asks a master that failed again a second later (a hung one would cost every round its time-out).
        deadline = time.monotonic() + 10
        while consumer.pending:
            assert time.monotonic() < deadline
            consumer.write([])
            time.sleep(0.05)  # ok-sleep: the real second before Redis is asked again must pass
        assert consumer.writes == 1
        assert server.client().hget("risk:{d:d1}:sig", "r") == b"6@9"
    finally:
        server.kill()
