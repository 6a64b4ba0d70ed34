"""Decision records: the packed string the scripts write now, and the hashes
the previous release wrote (still read and updated until their TTL ends
them, during a rolling deploy)."""

from __future__ import annotations

import orjson
import pytest
import redis

from riskservice.limits.client import connect
from riskservice.limits.keys import decision_keys
from riskservice.limits.records import DecisionRecord
from riskservice.limits.store import RedisStore
from riskservice.policy.load import load_policy
from tests.limits.args import decide_args
from tests.redis_server import RedisServer

T0 = 1_763_800_000_000
PLAN = load_policy("config/policy.yaml").default.plan
STATIC = [["fan_out", 1, 0, "sms", 6, 5, None, 0]]


@pytest.fixture
def store(redis_server: RedisServer, redis_client: redis.Redis) -> RedisStore:
    return RedisStore(connect(redis_server.url, 1000))


def old_record(client: redis.Redis, event: str, *, dec: int, ch: str = "", fp: str = "fp") -> str:
    """A record as the previous release's decide.lua wrote it: a hash with a TTL."""
    keys = decision_keys(event, "dev-old", "u-old", None)
    client.hset(keys.event, mapping={  # type: ignore[arg-type]
        "id": f"id-{event}", "pv": "default@1", "fp": fp, "u": "u-old", "m": "m-1", "r": 3,
        "fs": orjson.dumps(STATIC), "t": T0, "dec": dec, "ch": ch,
        "n": bytes.fromhex("01000000050000012c"), "c": int(dec == 0), "g": "0.25,0.5"})
    client.pexpire(keys.event, 86_400_000)
    return keys.event


def decide(store: RedisStore, event: str, fingerprint: str = "fp", now: int = T0) -> DecisionRecord:
    keys = decision_keys(event, "dev-old", "u-old", None)
    args = decide_args(now=now, decision_id=f"id-new-{event}", user_id="u-old", device_id="dev-old", plan=PLAN,
                       fingerprint=fingerprint)
    return store.decide(keys, args)


def test_a_new_record_is_one_string_that_reads_back_as_decided(store: RedisStore, redis_client: redis.Redis
                                                                ) -> None:
    keys = decision_keys("e1", "dev-1", "u-1", None)
    args = decide_args(now=T0, decision_id="id-e1", user_id="u-1", device_id="dev-1", plan=PLAN, static=STATIC,
                       policy_version="default@7", merchant_id="m-9", recipients=6, lat="31.2", lon="121.4")
    rec = store.decide(keys, args)
    assert redis_client.type(keys.event) == b"string"
    assert 0 < redis_client.pttl(keys.event) <= 86_400_000
    stored = DecisionRecord.parse(redis_client.get(keys.event))  # type: ignore[arg-type]
    assert stored is not None
    assert (stored["id"], stored["pv"], stored["u"], stored["m"], stored["r"], stored["t"], stored["dec"],
            stored["ch"], stored["c"]) == ("id-e1", "default@7", "u-1", "m-9", 6, T0, 1, "sms", 0)
    assert stored["f"] == STATIC and stored["n"] == rec.windows and stored["g"] is None
    assert "o" not in stored and "cs" not in stored and "al" not in stored
    again = store.decide(keys, args)
    assert (again.status, again.decision_id, again.findings, again.windows) == ("replay", "id-e1", STATIC,
                                                                                  rec.windows)


def test_outcome_and_challenge_results_are_added_to_a_string_record(store: RedisStore,
                                                                    redis_client: redis.Redis) -> None:
    keys = decision_keys("e2", "dev-2", "u-2", None)
    store.decide(keys, decide_args(now=T0, decision_id="id-e2", user_id="u-2", device_id="dev-2", plan=PLAN,
                                   static=STATIC, recipients=6))
    ttl = redis_client.pttl(keys.event)
    status, rec, cooled = store.challenge(keys.event, keys.user_log, passed=True, kind="sms", plan=PLAN,
                                          now_ms=T0 + 5000, retention_ms=86_400_000, events="risk:events")
    assert (status, cooled) == ("ok", False)
    assert rec is not None and (rec["cs"], rec["ct"], rec["c"], rec["dec"]) == ("passed", T0 + 5000, 1, 1)
    status, rec = store.outcome(keys.event, delivered=4, opened=2, claimed=1, window_ms=86_400_000, cap=100,
                                now_ms=T0 + 9000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and rec is not None
    assert (rec["o"], rec["cs"], rec["c"], rec["f"]) == ([4, 2, 1, T0 + 9000], "passed", 1, STATIC)
    status, rec = store.outcome(keys.event, delivered=4, opened=2, claimed=1, window_ms=86_400_000, cap=100,
                                now_ms=T0 + 9500, retention_ms=86_400_000, events="risk:events")
    assert status == "replay" and rec is not None and rec["o"] == [4, 2, 1, T0 + 9000]
    assert redis_client.type(keys.event) == b"string"
    assert ttl - 1000 <= redis_client.pttl(keys.event) <= ttl  # the TTL is kept
    # The pass counted the share in both windows.
    assert redis_client.exists(keys.device_state, keys.user_log) == 2


def test_a_hash_record_of_the_previous_release_replays_and_conflicts(store: RedisStore,
                                                                     redis_client: redis.Redis) -> None:
    old_record(redis_client, "old1", dec=2)
    rec = decide(store, "old1")
    assert (rec.status, rec.decision_id, rec.decision, rec.consumed, rec.policy_version) == (
        "replay", "id-old1", 2, False, "default@1")
    assert rec.findings == STATIC and rec.windows == {"device_velocity": (5, 300)}
    assert rec.raw is not None and rec.raw["g"] == [0.25, 0.5] and rec.raw["r"] == 3
    assert decide(store, "old1", fingerprint="other").status == "conflict"


def test_outcomes_and_challenges_update_a_hash_record_in_its_form(store: RedisStore,
                                                                  redis_client: redis.Redis) -> None:
    allowed = old_record(redis_client, "old2", dec=0)
    status, rec = store.outcome(allowed, delivered=3, opened=1, claimed=0, window_ms=86_400_000, cap=100,
                                now_ms=T0 + 1000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and rec is not None and rec["o"] == [3, 1, 0, T0 + 1000]
    status, rec = store.outcome(allowed, delivered=4, opened=1, claimed=0, window_ms=86_400_000, cap=100,
                                now_ms=T0 + 2000, retention_ms=86_400_000, events="risk:events")
    assert status == "too_many" and rec is not None and rec["r"] == 3
    assert redis_client.type(allowed) == b"hash" and redis_client.hget(allowed, "o") == f"3,1,0,{T0 + 1000}".encode()

    challenged = old_record(redis_client, "old3", dec=1, ch="captcha")
    status, rec, _ = store.challenge(challenged, "risk:{u:u-old}:log", passed=False, kind="sms", plan=PLAN,
                                     now_ms=T0 + 3000, retention_ms=86_400_000, events="risk:events")
    assert status == "kind_mismatch"
    status, rec, _ = store.challenge(challenged, "risk:{u:u-old}:log", passed=True, kind="captcha", plan=PLAN,
                                     now_ms=T0 + 3000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and rec is not None and (rec["cs"], rec["ct"], rec["c"]) == ("passed", T0 + 3000, 1)
    assert redis_client.type(challenged) == b"hash"
    assert redis_client.hmget(challenged, "cs", "c") == [b"passed", b"1"]
    assert 0 < redis_client.pttl(challenged) <= 86_400_000


def test_a_new_decision_reads_as_its_stored_record(store: RedisStore, redis_client: redis.Redis) -> None:
    # The store builds a new decision from what it sent and the script's part
    # of the record; it must read exactly as the record Redis keeps.
    keys = decision_keys("e9", "dev-9", "u-9", None)
    args = decide_args(now=T0, decision_id="id-e9", user_id="u-9", device_id="dev-9", plan=PLAN, static=STATIC,
                       policy_version="default@9", merchant_id="m-9", recipients=6)
    rec = store.decide(keys, args)
    stored = DecisionRecord.parse(redis_client.get(keys.event))  # type: ignore[arg-type]
    assert rec.status == "new" and rec.raw == stored
    assert DecisionRecord.from_reply("replay", redis_client.get(keys.event)).raw == stored  # type: ignore[arg-type]
