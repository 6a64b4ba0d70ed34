"""Group commit: concurrent script calls share round trips, each still gets its own answer.

Batches are made deterministic by pausing Redis (SIGSTOP): the first call's
round trip stays in flight while the others queue behind it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from riskservice.errors import StorageError
from riskservice.limits.client import connect
from riskservice.limits.scripts import Script
from riskservice.limits.store import LANE, RedisStore
from tests.redis_server import RedisServer


class TinyScript:
    """A script with what the store needs of one (its source and SHA1)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


ECHO = cast(Script, TinyScript("return 'echo:' .. ARGV[1]"))
UPPER = cast(Script, TinyScript("return string.upper(ARGV[1])"))
FAILING = cast(Script, TinyScript("return redis.error_reply('boom ' .. ARGV[1])"))


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisStore]:
    store = RedisStore(connect(server.url, 2000), breaker_cooldown_ms=0, budget_ms=2000)
    yield store
    store.close()


def leading(store: RedisStore) -> bool:
    lane = store._commit._lanes.get(LANE)
    return lane is not None and lane.leading


def queued(store: RedisStore) -> int:
    lane = store._commit._lanes.get(LANE)
    return 0 if lane is None else len(lane.queue)


def wait_for(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.001)  # ok-sleep: waiting for other threads to reach a state


class Caller(threading.Thread):
    """One ``store.run`` in a thread; keeps its reply or error."""

    def __init__(self, store: RedisStore, script: Script, arg: str) -> None:
        super().__init__(daemon=True)
        self.store, self.script, self.arg = store, script, arg
        self.reply: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.reply = self.store.run(self.script, (), (self.arg,))
        except BaseException as exc:  # the test inspects it
            self.error = exc


def queue_behind_paused_redis(server: RedisServer, store: RedisStore,
                              calls: list[tuple[Script, str]]) -> list[Caller]:
    """The first call in flight to a paused Redis, the others queued behind it; then Redis resumes."""
    server.pause()
    try:
        first = Caller(store, *calls[0])
        first.start()
        wait_for(lambda: leading(store))
        behind = [Caller(store, *call) for call in calls[1:]]
        for caller in behind:
            caller.start()
        wait_for(lambda: queued(store) == len(behind))
    finally:
        server.resume()
    for caller in (first, *behind):
        caller.join(10)
    return [first, *behind]


def test_calls_queued_behind_a_round_trip_go_out_together(server: RedisServer, store: RedisStore) -> None:
    store.run(ECHO, (), ("warm",))  # the script is loaded; one batch of one
    callers = queue_behind_paused_redis(server, store, [(ECHO, str(i)) for i in range(6)])
    assert [c.error for c in callers] == [None] * 6
    assert [c.reply for c in callers] == [f"echo:{i}".encode() for i in range(6)]
    # warm-up, the first call alone, then the five queued ones in one round trip
    assert (store._commit.batches, store._commit.parts) == (3, 7)
    assert not leading(store) and not queued(store)


def test_scripts_redis_lacks_are_loaded_and_only_their_calls_sent_again(server: RedisServer,
                                                                         store: RedisStore) -> None:
    store.run(ECHO, (), ("warm",))
    calls = [(ECHO, "a"), (UPPER, "b"), (ECHO, "c"), (UPPER, "d"), (ECHO, "e")]
    callers = queue_behind_paused_redis(server, store, calls)
    assert [c.error for c in callers] == [None] * 5
    assert [c.reply for c in callers] == [b"echo:a", b"B", b"echo:c", b"D", b"echo:e"]
    client = server.client()
    try:
        assert client.script_exists(UPPER.sha) == [True]
        # one EVALSHA per call, plus each call sent again after its script
        # was loaded: the warm-up (a fresh Redis) and the two UPPER calls
        assert client.info("commandstats")["cmdstat_evalsha"]["calls"] == 2 + 5 + 2
    finally:
        client.close()


def test_a_failing_script_fails_only_its_own_call(server: RedisServer, store: RedisStore) -> None:
    store.run(ECHO, (), ("warm",))
    store.run(ECHO, (), ("warm",))
    with pytest.raises(StorageError, match="boom x"):
        store.run(FAILING, (), ("x",))
    callers = queue_behind_paused_redis(server, store, [(ECHO, "1"), (ECHO, "2"), (FAILING, "3"), (ECHO, "4")])
    assert [c.reply for c in callers] == [b"echo:1", b"echo:2", None, b"echo:4"]
    assert isinstance(callers[2].error, StorageError) and "boom 3" in str(callers[2].error)
    assert [c.error for c in callers if c is not callers[2]] == [None] * 3


def test_a_stalled_redis_fails_every_call_within_the_budget_and_nothing_stays_stuck(server: RedisServer) -> None:
    budget_ms = 200
    store = RedisStore(connect(server.url, budget_ms), breaker_cooldown_ms=0, budget_ms=budget_ms)
    try:
        store.run(ECHO, (), ("warm",))
        server.pause()
        try:
            first = Caller(store, ECHO, "1")
            first.start()
            wait_for(lambda: leading(store))
            behind = [Caller(store, ECHO, str(i)) for i in range(2, 5)]
            for caller in behind:
                caller.start()
            for caller in (first, *behind):
                caller.join(10)
                assert isinstance(caller.error, StorageError)
        finally:
            server.resume()
        assert not leading(store) and not queued(store)
        assert store.run(ECHO, (), ("after",)) == b"echo:after"
    finally:
        store.close()


def test_many_threads_each_get_their_own_reply(store: RedisStore) -> None:
    errors: list[str] = []

    def hammer(worker: int) -> None:
        for i in range(300):
            arg = f"{worker}-{i}"
            reply = store.run(ECHO, (), (arg,))
            if reply != f"echo:{arg}".encode():
                errors.append(f"{arg} got {reply!r}")

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store._commit.parts == 8 * 300
    assert not leading(store) and not queued(store)


def test_one_wait_ends_each_batch(server: RedisServer) -> None:
    # RISK_REDIS_WAIT_REPLICAS with no replica: every WAIT runs to its
    # time-out, and Redis runs a connection's commands in order, so a WAIT
    # per call would add up.
    store = RedisStore(connect(server.url, 1000), breaker_cooldown_ms=0, budget_ms=1000, wait_replicas=1)
    try:
        store.run(ECHO, (), ("warm",))
        callers = queue_behind_paused_redis(server, store, [(ECHO, str(i)) for i in range(5)])
        assert [c.reply for c in callers] == [f"echo:{i}".encode() for i in range(5)]
        client = server.client()
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        # warm-up (a NOSCRIPT reply, then the call again), the first call, the four queued ones
        assert stats["cmdstat_evalsha"]["calls"] == 2 + 1 + 4
        assert stats["cmdstat_wait"]["calls"] == 2 + 1 + 1
        assert store.take_unreplicated() == 6
    finally:
        store.close()


def test_a_forked_child_does_not_wait_for_its_parents_batch(server: RedisServer, store: RedisStore) -> None:
    store.run(ECHO, (), ("warm",))
    server.pause()
    try:
        first = Caller(store, ECHO, "parent")
        first.start()
        wait_for(lambda: leading(store))  # a round trip in flight when the process forks
        pid = os.fork()
        if pid == 0:  # the child: its own queue and connections, or it would wait for nobody
            try:
                os._exit(0 if store.run(ECHO, (), ("child",)) == b"echo:child" else 1)
            except BaseException:
                os._exit(2)
    finally:
        server.resume()
    end = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        assert time.monotonic() < end, "the child hung"
        time.sleep(0.01)  # ok-sleep: waiting for a real child process
    assert os.waitstatus_to_exitcode(done[1]) == 0
    first.join(10)
    assert first.reply == b"echo:parent"


def test_a_lingering_call_takes_the_calls_arriving_meanwhile_in_its_round_trip(store: RedisStore) -> None:
    store.run(ECHO, (), ("warm",))  # the script is loaded; one batch of one
    # The store's group commit with a linger whose wait starts four more
    # calls and returns once they are queued behind the lingering one.
    others: list[Caller] = []

    def linger(seconds: float) -> None:
        assert seconds == 0.0002
        others.extend(Caller(store, ECHO, str(i)) for i in range(1, 5))
        for caller in others:
            caller.start()
        wait_for(lambda: queued(store) == 4)

    store._commit = type(store._commit)(store._send, store._receive, linger_s=0.0002, sleep=linger)
    assert store.run(ECHO, (), ("0",)) == b"echo:0"
    for caller in others:
        caller.join(10)
    assert [c.reply for c in others] == [f"echo:{i}".encode() for i in range(1, 5)]
    # The lingering call and the four that arrived meanwhile: one round trip.
    assert (store._commit.batches, store._commit.parts) == (1, 5)
    assert not leading(store) and not queued(store)


def test_without_a_linger_a_lone_call_goes_out_at_once(server: RedisServer) -> None:
    slept: list[float] = []
    store = RedisStore(connect(server.url, 2000), breaker_cooldown_ms=0, budget_ms=2000)
    try:
        store._commit = type(store._commit)(store._send, store._receive, sleep=slept.append)
        assert store.run(ECHO, (), ("x",)) == b"echo:x"
        assert slept == [] and (store._commit.batches, store._commit.parts) == (1, 1)
    finally:
        store.close()


def test_the_linger_setting_reaches_the_store(server: RedisServer) -> None:
    store = RedisStore(connect(server.url, 2000), breaker_cooldown_ms=0, budget_ms=2000, linger_us=150)
    try:
        assert store._commit._linger_s == 0.00015
        assert store.run(ECHO, (), ("y",)) == b"echo:y"
    finally:
        store.close()
