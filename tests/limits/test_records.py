"""Decision records: the packed string the scripts write now, and the hashes
the previous release wrote (still read and updated until their TTL ends
them, during a rolling deploy)."""

from __future__ import annotations

import struct

import orjson
import pytest
import redis

from riskservice.limits.client import connect
from riskservice.limits.contract import RECORD_POSITION
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


def offsets(raw: bytes) -> tuple[int, int]:
    """Where a packed record's flags byte is, and where its results part starts (after the graph scores)."""
    pos = 0
    for _ in range(5):  # fingerprint, decision id, user id, policy version, merchant id
        pos += 2 + int.from_bytes(raw[pos:pos + 2], "big")
    pos += 8 + int.from_bytes(raw[pos + 4:pos + 8], "big")  # recipients, stateless findings
    flags = pos + 9  # after the time (6), decision, challenge and consumed
    pos += 10
    for _ in range(3):  # windows, stateful findings, graph scores
        pos += 2 + int.from_bytes(raw[pos:pos + 2], "big")
    return flags, pos


def previous_layout(raw: bytes) -> bytes:
    """A record of a challenged share as the previous layout wrote it: no flag, no results, no position."""
    flags, results = offsets(raw)
    return raw[:flags] + bytes([raw[flags] & ~RECORD_POSITION]) + raw[flags + 1:results]


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


def test_a_pass_that_a_ban_held_is_kept_in_either_form(store: RedisStore, redis_client: redis.Redis) -> None:
    # a pass while a ban blocks the device: recorded, not counted, the ban named; no outcome for it
    redis_client.hset("risk:{d:dev-old}:ban", mapping={"reason": "farm", "until": 0})
    old = old_record(redis_client, "old4", dec=1, ch="captcha")
    status, rec, _ = store.challenge(old, "risk:{u:u-old}:log", passed=True, kind="captcha", plan=PLAN,
                                     now_ms=T0 + 3000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and rec is not None
    assert (rec["cs"], rec["c"], rec["held"]) == ("passed", 0, "device_blocklist")
    assert redis_client.type(old) == b"hash"
    keys = decision_keys("e8", "dev-old", "u-old", None)
    args = decide_args(now=T0, decision_id="id-e8", user_id="u-old", device_id="dev-old", plan=PLAN,
                       static=[["fan_out", 1, 0, "captcha", 11, 10, None, 0]])
    redis_client.delete("risk:{d:dev-old}:ban")
    assert store.decide(keys, args).decision == 1
    redis_client.hset("risk:{d:dev-old}:ban", mapping={"reason": "3 failed", "until": T0 + 60_000,
                                                      "code": "challenge_failures"})
    status, rec, _ = store.challenge(keys.event, keys.user_log, passed=True, kind="captcha", plan=PLAN,
                                     now_ms=T0 + 3000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and rec is not None and (rec["cs"], rec["c"], rec["held"]) == ("passed", 0,
                                                                                         "challenge_failures")
    assert not redis_client.exists(keys.device_state, keys.user_log)
    for key in (old, keys.event):
        status, rec = store.outcome(key, delivered=1, opened=1, claimed=1, window_ms=86_400_000, cap=100,
                                    now_ms=T0 + 4000, retention_ms=86_400_000, events="risk:events")
        assert status == "not_a_share" and rec is not None and "o" not in rec


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


def test_a_challenged_share_keeps_its_position_after_its_results(store: RedisStore,
                                                                 redis_client: redis.Redis) -> None:
    keys = decision_keys("e10", "dev-10", "u-10", None)
    rec = store.decide(keys, decide_args(now=T0, decision_id="id-e10", user_id="u-10", device_id="dev-10",
                                         plan=PLAN, static=STATIC, lat="31.2", lon="121.4"))
    raw = redis_client.get(keys.event)
    assert isinstance(raw, bytes)
    stored = DecisionRecord.parse(raw)
    assert rec.decision == 1 and stored is not None and rec.raw == stored
    assert stored["p"] == [31.2, 121.4] and "cs" not in stored and "o" not in stored
    flags, results = offsets(raw)
    assert raw[flags] & RECORD_POSITION and raw[results:] == bytes(9) + struct.pack(">dd", 31.2, 121.4)
    # A reader of the previous layout reads the (empty) results and stops: all but the position.
    assert DecisionRecord.parse(raw[:results + 9]) == {k: v for k, v in stored.items() if k != "p"}

    # A pass moves the device there, at the share's time; results and outcomes keep the position.
    status, passed, _ = store.challenge(keys.event, keys.user_log, passed=True, kind="sms", plan=PLAN,
                                        now_ms=T0 + 60_000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and passed is not None and (passed["cs"], passed["p"]) == ("passed", [31.2, 121.4])
    assert redis_client.get(keys.device_geo) == T0.to_bytes(6, "big") + struct.pack(">dd", 31.2, 121.4)
    assert 0 < redis_client.pttl(keys.device_geo) <= 86_400_000
    status, reported = store.outcome(keys.event, delivered=1, opened=1, claimed=1, window_ms=86_400_000, cap=100,
                                     now_ms=T0 + 90_000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and reported is not None and reported["p"] == [31.2, 121.4]
    assert reported["o"] == [1, 1, 1, T0 + 90_000] and reported["cs"] == "passed"

    # An older process recording a result drops the position and keeps the flag: still read.
    raw = redis_client.get(keys.event)
    assert isinstance(raw, bytes)
    redis_client.set(keys.event, raw[:-16], keepttl=True)
    status, reported = store.outcome(keys.event, delivered=1, opened=1, claimed=1, window_ms=86_400_000, cap=100,
                                     now_ms=T0 + 95_000, retention_ms=86_400_000, events="risk:events")
    assert status == "replay" and reported is not None and "p" not in reported


def test_a_failed_challenge_leaves_the_position(store: RedisStore, redis_client: redis.Redis) -> None:
    keys = decision_keys("e11", "dev-11", "u-11", None)
    store.decide(keys, decide_args(now=T0, decision_id="id-e11", user_id="u-11", device_id="dev-11", plan=PLAN,
                                   static=STATIC, lat="31.2", lon="121.4"))
    status, failed, _ = store.challenge(keys.event, keys.user_log, passed=False, kind="sms", plan=PLAN,
                                        now_ms=T0 + 60_000, retention_ms=86_400_000, events="risk:events")
    assert status == "ok" and failed is not None and (failed["cs"], failed["p"]) == ("failed", [31.2, 121.4])
    assert not redis_client.exists(keys.device_geo)


def test_only_a_challenged_share_keeps_its_position(store: RedisStore, redis_client: redis.Redis) -> None:
    for event, static in (("e12", None), ("e13", [["sensitive_copy", 2, 0, "", "x", None, None, 0]])):
        keys = decision_keys(event, "dev-12", "u-12", None)
        rec = store.decide(keys, decide_args(now=T0, decision_id=f"id-{event}", user_id="u-12", device_id="dev-12",
                                             plan=PLAN, static=static, lat="31.2", lon="121.4"))
        raw = redis_client.get(keys.event)
        assert isinstance(raw, bytes) and rec.raw is not None and "p" not in rec.raw
        flags, results = offsets(raw)
        assert raw[flags] & RECORD_POSITION == 0 and results == len(raw), rec.decision
