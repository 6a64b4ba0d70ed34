"""RISK_REDIS_WAIT_REPLICAS: a decision is answered once a replica has it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riskservice.decisions.engine import DecisionEngine
from riskservice.decisions.request import validate_decision_request
from riskservice.limits.client import connect
from riskservice.limits.store import RedisStore
from riskservice.policy.load import load_policy
from tests.cluster.nodes import poll
from tests.redis_server import RedisServer


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    master = RedisServer(tmp_path / "master").start()
    replica = RedisServer(tmp_path / "replica", replica_of=master).start()
    try:
        client = replica.client()
        poll("the replica to be in sync", lambda: client.info("replication")["master_link_status"] == "up", 10)
        client.close()
        yield master, replica
    finally:
        replica.kill()
        master.kill()


def body(i: int) -> dict[str, object]:
    return {"event_id": f"e{i}", "device_id": "dev-1", "user_id": "u-1", "coupon_id": "cp-1"}


def test_a_decision_is_on_the_replica_when_it_is_answered(pair: tuple[RedisServer, RedisServer]) -> None:
    master, replica = pair
    store = RedisStore(connect(master.url, 400), breaker_cooldown_ms=0, budget_ms=400, wait_replicas=1)
    engine = DecisionEngine(store, lambda: load_policy("config/policy.yaml"))
    on_replica = replica.client()
    try:
        for i in range(20):
            answer = engine.decide(validate_decision_request(body(i)), body(i))
            assert not answer.degraded
            # No waiting here: WAIT already held the answer until the replica had the writes.
            assert on_replica.get("risk:{d:dev-1}:state") == master.client().get("risk:{d:dev-1}:state")
        assert store.take_unreplicated() == 0

        replica.kill()
        answer = engine.decide(validate_decision_request(body(99)), body(99))
        assert not answer.degraded  # still answered, within the budget
        # This WAIT runs to its time-out, and Redis may answer it after the
        # socket's time-out: it still counts (see the next test).
        assert store.take_unreplicated() == 1
    finally:
        store.close()
        on_replica.close()


def test_a_wait_answered_after_the_socket_time_out_still_counts(tmp_path: Path) -> None:
    # Redis 6.2 answers a WAIT that times out only at its next timer tick (up
    # to 1000/hz = 100 ms late), so the reply can come after the socket's
    # time-out. The test above then (rarely, under CPU load) saw no reply and
    # counted nothing. Here the WAIT's own time-out (a quarter of a 2 s
    # budget: 500 ms) is always past the socket's (200 ms), and no replica
    # exists: every reply comes too late.
    master = RedisServer(tmp_path / "master").start()
    store = RedisStore(connect(master.url, 400), breaker_cooldown_ms=60_000, budget_ms=2000, wait_replicas=1)
    engine = DecisionEngine(store, lambda: load_policy("config/policy.yaml"))
    try:
        for i in range(2):
            answer = engine.decide(validate_decision_request(body(i)), body(i))
            # Answered (the script ran), not degraded: the breaker stays
            # closed, since Redis answered and only a replica is missing.
            assert not answer.degraded
            assert store.take_unreplicated() == 1
        assert master.client().get("risk:{d:dev-1}:state") is not None
    finally:
        store.close()
        master.kill()


def test_without_the_setting_nothing_waits(pair: tuple[RedisServer, RedisServer]) -> None:
    master, replica = pair
    store = RedisStore(connect(master.url, 400), breaker_cooldown_ms=0, budget_ms=400)
    replica.kill()
    engine = DecisionEngine(store, lambda: load_policy("config/policy.yaml"))
    try:
        assert not engine.decide(validate_decision_request(body(1)), body(1)).degraded
        assert store.take_unreplicated() == 0
    finally:
        store.close()


def test_the_setting_is_read_and_checked() -> None:
    from config.settings import Settings, SettingsError

    env = {"RISK_API_KEYS": "issuer:0123456789abcdef", "RISK_REDIS_WAIT_REPLICAS": "1"}
    assert Settings.from_env(env).redis_wait_replicas == 1
    with pytest.raises(SettingsError, match="RISK_REDIS_WAIT_REPLICAS"):
        Settings.from_env({**env, "RISK_REDIS_WAIT_REPLICAS": "-1"})

