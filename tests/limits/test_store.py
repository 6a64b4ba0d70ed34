"""The Redis script against the reference algorithm, on a real Redis."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import redis

from riskservice.limits.client import connect
from riskservice.limits.contract import RULES
from riskservice.limits.keys import decision_keys
from riskservice.limits.memory import MemoryStore
from riskservice.limits.records import decode_device_state
from riskservice.limits.store import SCRIPTS, WARM_CONNECTIONS, RedisStore
from riskservice.policy.load import load_policy, parse_policy
from tests.limits.args import decide_args
from tests.redis_server import RedisServer

T0 = 1_763_800_000_000

SMALL_POLICY = b"""
rules:
  device_blocklist: {action: block}
  user_blocklist: {action: block}
  ip_blocklist: {action: block}
  device_velocity: {limit: 3, window_s: 10, action: challenge, challenge: captcha}
  device_daily_cap: {limit: 6, window_s: 60, action: block}
  user_daily_cap: {limit: 5, window_s: 60, action: block}
  device_many_users: {limit: 2, window_s: 30, action: challenge, challenge: captcha}
  fan_out: {limit: 10, action: challenge, challenge: sms}
  sensitive_copy: {action: block, terms: [x]}
  low_success_rate: {min_samples: 20, threshold: 0.15, window_s: 86400, action: challenge, challenge: captcha}
  geofence: {areas: [], action: challenge, challenge: captcha}
  impossible_travel: {max_speed_kmh: 500, min_distance_km: 1, action: challenge, challenge: captcha}
  challenge_failures: {limit: 5, window_s: 3600, cooldown_s: 3600, action: block}
  graph_anomaly: {threshold: 0.8, action: challenge, challenge: captcha}
  external_channel: {allowed_platforms: ["*"], action: block}
"""


@pytest.fixture
def store(redis_server: RedisServer, redis_client: redis.Redis) -> RedisStore:
    return RedisStore(connect(redis_server.url, 1000))


def run(store: object, plan: bytes, event: str, device: str, user: str, now: int,
        findings: list[list[object]] | None = None, arms: str = "") -> object:
    keys = decision_keys(event, device, user, None)
    args = decide_args(now=now, decision_id=f"id-{event}", user_id=user, device_id=device, plan=plan,
                       static=findings, policy_version="test@1", recipients=0, arms=arms)
    return store.decide(keys, args)  # type: ignore[attr-defined]


def test_script_matches_reference_on_random_traffic(store: RedisStore) -> None:
    plan = parse_policy(SMALL_POLICY).default.plan
    ref = MemoryStore()
    rng = random.Random(7)
    now = T0
    for i in range(1500):
        # Mostly forward; now and then the clock steps back (another app server).
        now += rng.choice([0, 1, 250, 1000, 3000, 9000, 20_000, -700])
        device = rng.choice(["d1", "d2"])
        user = rng.choice(["u1", "u2", "u3", "u4"])
        static = [["fan_out", 1, 0, "sms", 11, 10, None, 0]] if rng.random() < 0.05 else []
        # Now and then a gray rollout puts some rules in shadow for this call.
        arms = "".join(rng.choice("01") for _ in RULES) if rng.random() < 0.2 else ""
        got = run(store, plan, f"e{i}", device, user, now, static, arms)
        want = run(ref, plan, f"e{i}", device, user, now, static, arms)
        assert got == want, f"step {i}"


def test_replay_returns_the_same_record_and_counts_once(store: RedisStore) -> None:
    plan = load_policy("config/policy.yaml").default.plan
    first = run(store, plan, "e1", "d", "u", T0)
    again = run(store, plan, "e1", "d", "u", T0 + 5)
    assert again.status == "replay" and again.decision_id == first.decision_id  # type: ignore[attr-defined]
    third = run(store, plan, "e2", "d", "u", T0 + 6)
    assert third.windows["device_velocity"] == (2, 300_000 - 6)  # type: ignore[attr-defined]


def test_memory_per_device_is_bounded_by_policy(store: RedisStore, redis_client: redis.Redis) -> None:
    plan = parse_policy(SMALL_POLICY).default.plan
    for i in range(200):
        run(store, plan, f"e{i}", "dev", f"u{i % 2}", T0 + i * 5_000)
    log, users = decode_device_state(redis_client.get("risk:{d:dev}:state"))
    assert len(log) == 6  # at most dcap entries
    assert set(users) == {"u0", "u1"}  # at most scap users
    assert redis_client.pttl("risk:{d:dev}:state") <= 60_000


def test_refused_shares_consume_nothing(store: RedisStore, redis_client: redis.Redis) -> None:
    plan = parse_policy(SMALL_POLICY).default.plan
    for i in range(10):
        rec = run(store, plan, f"e{i}", "dev", "u1", T0 + i)
    assert rec.decision == 1  # type: ignore[attr-defined]
    log, _ = decode_device_state(redis_client.get("risk:{d:dev}:state"))
    assert len(log) == 3


def test_every_key_expires(store: RedisStore, redis_client: redis.Redis) -> None:
    plan = load_policy("config/policy.yaml").default.plan
    run(store, plan, "e1", "dev", "user", T0)
    for key in redis_client.keys("*"):
        if key == b"risk:events":
            continue  # trimmed by age instead (tests/api/test_events.py)
        assert redis_client.pttl(key) > 0, key


def test_device_state_round_trips_unicode_users(store: RedisStore, redis_client: redis.Redis) -> None:
    plan = load_policy("config/policy.yaml").default.plan
    run(store, plan, "e1", "dev", "用户-1", T0)
    run(store, plan, "e2", "dev", "u2", T0 + 5)
    log, users = decode_device_state(redis_client.get("risk:{d:dev}:state"))
    assert log == [T0, T0 + 5]
    assert users == {"用户-1": T0, "u2": T0 + 5}


def test_warm_up_opens_connections_loads_the_scripts_and_reads_the_clock(redis_server: RedisServer,
                                                                         redis_client: redis.Redis) -> None:
    store = RedisStore(connect(redis_server.url, 1000), budget_ms=1000)
    redis_client.script_flush()  # (a Redis restarted since the store started)
    assert store.warm_up() == []
    assert len(store._idle) == WARM_CONNECTIONS and all(c._sock is not None for c in store._idle)
    assert redis_client.script_exists(*(s.sha for s in SCRIPTS)) == [True] * len(SCRIPTS)
    assert store.deadline_ms() != ""
    store.close()


def test_warm_up_on_a_redis_down_says_so(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    store = RedisStore(connect(server.url, 1000), budget_ms=1000)
    server.kill()
    assert store.warm_up() == ["redis"]
    store.close()
