"""One consumer at a time: the lease, and consumers started on several
servers (threads here, each with its own client) of which one follows the
stream while the others stand by and take over (real Redis)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from riskservice.limits.clock import ManualClock
from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.heartbeat import read_status
from riskservice.signals.lease import LEASE_KEY, Lease, LeaseLost
from riskservice.signals.runner import run_consumer
from tests.api.helpers import share
from tests.redis_server import RedisServer


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_at_a_time_renewed_at_a_tenth_of_its_time(redis_client: redis.Redis) -> None:
    clock = Seconds()
    a = Lease(redis_client, "a", ttl_ms=10_000, clock=clock)
    b = Lease(redis_client, "b", ttl_ms=10_000, clock=clock)
    assert a.acquire() and not b.acquire()
    assert a.acquire()  # its own lease: taken again (renewed)
    assert (a.current(), b.current()) == ("a", "a")
    redis_client.pexpire(LEASE_KEY, 5_000)
    clock.now += 0.9
    assert a.keep() and redis_client.pttl(LEASE_KEY) <= 5_000  # under a tenth of the time: not renewed
    clock.now += 0.2
    assert a.keep() and redis_client.pttl(LEASE_KEY) > 9_000
    # Another holder took over (the lease ran out while it was paused): it must stop.
    redis_client.set(LEASE_KEY, "b", px=10_000)
    clock.now += 1.1
    with pytest.raises(LeaseLost):
        a.check()
    assert not a.keep()  # and stays stopped
    a.release()  # not its lease any more: left alone
    assert b.current() == "b"
    b.release()
    assert a.current() is None and a.acquire()


def test_a_lease_that_is_not_renewed_runs_out(redis_client: redis.Redis) -> None:
    a, b = Lease(redis_client, "a", ttl_ms=200), Lease(redis_client, "b", ttl_ms=200)
    assert a.acquire() and not b.acquire()
    deadline = time.monotonic() + 5
    while not b.acquire():  # a stopped renewing (a dead process)
        assert time.monotonic() < deadline
        time.sleep(0.02)  # ok-sleep: the lease runs out on Redis' clock
    assert not a.keep()


class Server:
    """A consumer process of one app server: ``run_consumer`` in a thread, its own client."""

    def __init__(self, redis_server: RedisServer, name: str, ttl_ms: int = 400) -> None:
        self.client = redis_server.client()
        self.lease = Lease(self.client, f"holder-{name}", ttl_ms=ttl_ms)
        self.stopping = threading.Event()
        self.result: list[SignalConsumer | None] = []
        self.thread = threading.Thread(target=lambda: self.result.append(run_consumer(
            self.client, self.lease, self.stopping, name=name, standby_s=0.05)), daemon=True)
        self.thread.start()

    def stop(self) -> SignalConsumer | None:
        self.stopping.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()
        self.client.close()
        return self.result[0]


@pytest.fixture
def servers(redis_server: RedisServer) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        if not s.stopping.is_set():
            s.stop()


def wait_until(check: object, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.02)  # ok-sleep: consumers in threads follow the stream in real time


def test_two_servers_one_consumer_and_a_takeover(client: FlaskClient, redis_server: RedisServer,
                                                 redis_client: redis.Redis, clock: ManualClock,
                                                 servers: list[Server]) -> None:
    servers += [Server(redis_server, "s1")]
    wait_until(lambda: read_status(redis_client).name == "s1" and read_status(redis_client).state == "ok")
    servers += [Server(redis_server, "s2")]
    for i in range(4):  # four accounts on one device: device_rotation's floor
        share(client, event_id=f"a{i}", device_id="d1", user_id=f"u{i}")
    wait_until(lambda: redis_client.hexists("risk:{d:d1}:sig", "r"))
    assert redis_client.get(LEASE_KEY) == b"holder-s1"
    # The first server stops: it gives the lease up, the second takes over,
    # rebuilds from the stream's window and follows what comes next.
    first = servers[0].stop()
    assert first is not None and first.engine.entries == 4
    wait_until(lambda: redis_client.get(LEASE_KEY) == b"holder-s2")
    for i in range(4):
        share(client, event_id=f"b{i}", device_id="d2", user_id=f"v{i}")
    wait_until(lambda: redis_client.hexists("risk:{d:d2}:sig", "r"))
    second = servers[1].stop()
    assert second is not None and second.engine.entries == 8  # the 4 it rebuilt, the 4 it followed
    assert redis_client.get(LEASE_KEY) is None


def test_a_holder_that_lost_the_lease_stops_and_the_stream_is_followed_again(
        client: FlaskClient, redis_server: RedisServer, redis_client: redis.Redis, servers: list[Server],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="riskservice.signals")
    servers += [Server(redis_server, "s1"), Server(redis_server, "s2")]
    wait_until(lambda: read_status(redis_client).state == "ok")
    leader = redis_client.get(LEASE_KEY)
    # As if the leader's process had been paused past its lease and someone
    # else had taken it: the leader stops on its next round, both stand by.
    redis_client.set(LEASE_KEY, "holder-elsewhere", px=1500)
    wait_until(lambda: any(r.getMessage() == "signal consumer lost its lease; standing by"
                           and r.holder.encode() == leader for r in caplog.records))  # type: ignore[attr-defined]
    wait_until(lambda: redis_client.get(LEASE_KEY) in (b"holder-s1", b"holder-s2"))  # it ran out: taken again
    holder = redis_client.get(LEASE_KEY).decode().removeprefix("holder-")  # type: ignore[union-attr]
    for i in range(4):
        share(client, event_id=f"c{i}", device_id="d3", user_id=f"w{i}")
    wait_until(lambda: redis_client.hexists("risk:{d:d3}:sig", "r"))
    wait_until(lambda: read_status(redis_client).name == holder)
    for s in servers:
        s.stop()
    assert redis_client.get(LEASE_KEY) is None
