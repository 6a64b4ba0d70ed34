"""Round trips to a cluster's masters share lanes (group_commit.py): a master
that stops answering holds up only the calls that need it.

Made deterministic by pausing masters (SIGSTOP) on a real cluster: a round
trip to a paused master stays in flight for as long as the test wants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from riskservice.limits.cluster_io import ClusterIO, Command
from tests.cluster.nodes import poll
from tests.cluster_server import Node, RedisClusterServer


class Caller(threading.Thread):
    """One ``ClusterIO.round_trip`` in a thread; keeps its replies or error."""

    def __init__(self, io: ClusterIO, groups: list[tuple[str, list[Command]]]) -> None:
        super().__init__(daemon=True)
        self.io, self.groups = io, groups
        self.replies: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.replies = self.io.round_trip(self.groups)
        except BaseException as exc:  # the test inspects it
            self.error = exc


def key_on(cluster: RedisClusterServer, node: Node) -> str:
    return next(k for k in (f"lane-{i}" for i in range(10_000)) if cluster.master_of(k).port == node.port)


@pytest.fixture
def io(redis_cluster: RedisClusterServer) -> Iterator[ClusterIO]:
    # Sockets that outwait the test (a paused master answers when resumed);
    # a queued call gives up after half the budget, 1 s.
    client = redis_cluster.client(socket_timeout=30, socket_connect_timeout=30)
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    try:
        yield ClusterIO(client, breaker_cooldown_ms=0, budget_ms=2000)
    finally:
        client.close()


def test_a_lane_handed_to_a_call_stuck_on_another_master_is_taken_over(
        io: ClusterIO, redis_cluster: RedisClusterServer) -> None:
    masters = [n for n in redis_cluster.nodes if n.role == "master"]
    stuck, busy = masters[0], masters[1]
    key_stuck, key_busy = key_on(redis_cluster, stuck), key_on(redis_cluster, busy)
    lane = f"127.0.0.1:{busy.port}"
    for key in (key_stuck, key_busy):
        io.call(key, ("SET", key, "v"))  # connections open
    lanes = io._commit._lanes

    def until(what: str, condition: Callable[[], bool]) -> None:
        poll(what, condition, 5)

    # A first call in flight on the busy master; then a call to both masters:
    # it leads the idle lane of the one that will not answer, and queues on
    # the busy one's.
    redis_cluster.pause(busy)
    resumed = False
    try:
        first = Caller(io, [(key_busy, [("GET", key_busy)])])
        first.start()
        until("the first call in flight", lambda: lane in lanes and lanes[lane].leading)
        redis_cluster.pause(stuck)
        try:
            both = Caller(io, [(key_stuck, [("GET", key_stuck)]), (key_busy, [("GET", key_busy)])])
            both.start()
            until("the call to both queued", lambda: len(lanes[lane].queue) == 1)
            redis_cluster.resume(busy)
            resumed = True
            first.join(10)
            assert first.error is None and first.replies == [[b"v"]]
            # The busy master's lane went to the only call queued on it, which
            # is reading the stuck master. A call that needs only the busy
            # master must not wait for that.
            until("the lane handed on", lambda: lanes[lane].leading and not lanes[lane].queue)
            alone = Caller(io, [(key_busy, [("GET", key_busy)])])
            alone.start()
            alone.join(10)
            assert alone.error is None and alone.replies == [[b"v"]]
            assert both.is_alive()  # still waiting for the stuck master
        finally:
            redis_cluster.resume(stuck)
    finally:
        if not resumed:
            redis_cluster.resume(busy)
    both.join(10)
    assert both.error is None and both.replies == [[b"v"], [b"v"]]
    assert not any(lanes[name].leading or lanes[name].queue for name in lanes)


def test_a_lingering_call_on_a_cluster_takes_the_calls_arriving_for_its_master(
        redis_cluster: RedisClusterServer) -> None:
    # RISK_REDIS_LINGER_US reaches the cluster's group commit; a call that
    # finds its master idle waits (here: starts three more calls for the same
    # master and returns once they are queued), and all four share one round trip.
    client = redis_cluster.client(socket_timeout=30, socket_connect_timeout=30)
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    io = ClusterIO(client, breaker_cooldown_ms=0, budget_ms=2000, linger_us=300)
    try:
        assert io._commit._linger_s == 0.0003
        master = next(n for n in redis_cluster.nodes if n.role == "master")
        key = key_on(redis_cluster, master)
        io.call(key, ("SET", key, "v"))  # a connection open; one batch of one
        lane = f"127.0.0.1:{master.port}"
        others: list[Caller] = []

        def linger(seconds: float) -> None:
            assert seconds == 0.0003
            others.extend(Caller(io, [(key, [("GET", key)])]) for _ in range(3))
            for caller in others:
                caller.start()
            poll("the others queued", lambda: len(io._commit._lanes[lane].queue) == 3, 5)

        io._commit = type(io._commit)(io._send, io._receive, linger_s=0.0003, sleep=linger)
        assert io.call(key, ("GET", key)) == [b"v"]
        for caller in others:
            caller.join(10)
        assert [c.replies for c in others] == [[[b"v"]]] * 3
        assert (io._commit.batches, io._commit.parts) == (1, 4)
    finally:
        client.close()
