"""The native decide (``riskdecide``, ``RISK.DECIDE``) against decide.lua, on
random traffic: every reply and every key byte for byte.

Two Redis servers get the same traffic: one runs decide.lua, the other the
module, and a replica follows the module's server. Each step sends the same
decision (same KEYS and ARGV) to both, after the same outside writes (bans,
the allowlist, graph scores, outcomes, signal values, review statuses,
records of the previous release). The replies must be equal, and so must the
decision's keys after it; at the end the whole keyspaces, and the replica's
(so the module's replicated effects rebuild what it wrote).
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from riskservice.limits.contract import (
    CHALLENGES,
    FIRST_SIGNAL,
    RULES,
    decode_findings,
    encode_findings,
    signal_field,
    user_side,
)
from riskservice.limits.keys import EVENTS, REVIEW_QUEUE, DecisionKeys, challenge_keys, decision_keys
from riskservice.limits.records import DecisionRecord
from riskservice.limits.scripts import CHALLENGE, DECIDE
from riskservice.policy.load import parse_policy
from tests.limits.args import RANDOM_TRAFFIC_POLICY, decide_args
from tests.limits.twins import aof_bytes, both, keyspace, rebuilt_from_aof, replica_matches, replicated, snapshot

T0 = int(time.time() * 1000)
GRAPH = "risk:graph:v1:fast"
# The reference test's policy, with a user cap this traffic reaches, and a
# review threshold a few refusals pass.
POLICY = RANDOM_TRAFFIC_POLICY.replace(b"user_daily_cap: {limit: 6,", b"user_daily_cap: {limit: 3,") + \
    b"review: {min_points: 4, anomaly_threshold: 0.8}\n"
DEVICES = ["d1", "d2", "d3"]
# Users of several lengths, one of them not ASCII, one a prefix of another.
USERS = ["u1", "u2", "u22", "用户4", "oXk2_Vb9qLmN0pR7sT1uW3yZ5aCd"]
STATIC = [[], [], [], [["fan_out", 1, 0, "sms", 11, 10, None, 0]], [["sensitive_copy", 2, 0, "", "x", None, None, 0]],
          [["fan_out", 1, 1, "sms", 11, 10, None, 0]],
          [["fan_out", 1, 0, "captcha", 11, 10, None, 0], ["sensitive_copy", 2, 1, "", "x", None, None, 0]]]
# What the user's slot finds on Redis Cluster (reserve.lua, the ip's ban), enforced or in shadow.
USER_SIDE = [["user_daily_cap", 2, 0, "", 4, 3, 86400, 61_000], ["user_daily_cap", 2, 1, "", 4, 3, 86400, 0],
             ["user_blocklist", 2, 0, "", "刷单", None, None, 0], ["user_blocklist", 1, 0, "sms", "", None, None, 9],
             ["ip_blocklist", 2, 0, "", "proxy farm", None, None, 20_000],
             ["ip_blocklist", 1, 1, "captcha", "x", None, None, 0]]
SIGNAL_VALUES = ["{v}@{until}", "{v}@{until}", "{v}@{until}", "x@{until}", "{v}@", "@{until}", "{v}@{until}@1",
                 " {v} @{until}"]


def findings_of(decided: bytes) -> bytes:
    """The packed findings of the script's part of a record (``RECORD_DECIDED_FORMAT``)."""
    at = 10 + 2 + int.from_bytes(decided[10:12], "big")
    return decided[at + 2:at + 2 + int.from_bytes(decided[at:at + 2], "big")]


def outside_writes(rng: random.Random, now: int, keys: DecisionKeys, device: str, user: str, events: list[str],
                   lua: redis.Redis, native: redis.Redis) -> None:
    """What else writes the keys a decision reads: analysts, the batch, outcomes, the signal consumer."""
    event = rng.random()
    if event < 0.04:  # a ban, timed or not, with or without a reason, or the cool-down; or lifted
        key = rng.choice([keys.device_ban, keys.user_ban, keys.ip_ban])
        if rng.random() < 0.4:
            # (The ip is nearly every share's: banned only for a while, or it would refuse everything.)
            until = now + 20_000 if key == keys.ip_ban else rng.choice([0, now + 20_000, now - 1])
            fields = {"until": str(until), "reason": rng.choice(["test", "刷单"])}
            if rng.random() < 0.3:
                fields["code"] = "challenge_failures"
            if rng.random() < 0.2:
                del fields["reason"]
            both(lua, native, "HSET", key, *[x for kv in fields.items() for x in kv])
        else:
            both(lua, native, "DEL", key)
    elif event < 0.05:  # allowlisted, or not any more
        if lua.exists(keys.allowlist):
            both(lua, native, "DEL", keys.allowlist)
        else:
            both(lua, native, "HSET", keys.allowlist, "reason", "t")
    elif event < 0.07:  # the batch writes graph scores (of the device, the user, or both)
        node = rng.choice([f"d:{device}", f"u:{user}"])
        anomaly, kol = rng.choice([0.05, 0.3, 0.7, 0.8, 0.93, 1]), round(rng.random(), 4)
        both(lua, native, "HSET", GRAPH, node, f"{anomaly},{kol:.4f}" if anomaly == 1 else f"{anomaly:.4f},{kol:.4f}")
    elif event < 0.25:  # an outcome of an earlier share (11-byte entries: time, claimed, 4 bytes)
        entry = (now - rng.choice([0, 1000, 60_000, 100_000])).to_bytes(6, "big") + bytes([rng.choice([0, 0, 1])]) + \
            b"\0\0\0\1"
        both(lua, native, "APPEND", keys.device_outcomes, entry)
    elif event < 0.30:  # the signal consumer writes an observed value (valid until a time)
        code = rng.choice(RULES[FIRST_SIGNAL - 1:])
        value = rng.choice(SIGNAL_VALUES).format(v=rng.choice([1, 2, 3, 4.5, 5, 7]),
                                                 until=now + rng.choice([-1, 0, 1, 20_000, 300_000]))
        both(lua, native, "HSET", keys.signals, signal_field(code, user), value)
    elif event < 0.32:  # an analyst reviews the device
        both(lua, native, "HSET", keys.review, "status", rng.choice(["open", "closed", "confirmed"]))
    elif event < 0.33:  # the queue has the device at a graph priority
        both(lua, native, "ZADD", REVIEW_QUEUE, rng.choice([1, 50]), device)
    elif event < 0.335 and events:  # a record of the previous release (a hash) under an event id
        old = decision_keys(rng.choice(events), "d1", "u1", None)
        both(lua, native, "DEL", old.event)
        both(lua, native, "HSET", old.event, "fp", rng.choice(["fp", "other"]), "id", "old", "dec", "0")


def challenge_result(rng: random.Random, now: int, challenged: list[tuple[DecisionKeys, str]], split: bool,
                     plan: bytes, lua: redis.Redis, native: redis.Redis) -> bool:
    """A challenge result (challenge.lua on both servers) on a challenged decision, mostly the latest;
    True when a pass moved the device to the share's position (which the module's decisions read)."""
    keys, kind = challenged.pop(-1 if rng.random() < 0.7 else rng.randrange(len(challenged)))
    passed = rng.random() < 0.85
    before = lua.get(keys.device_geo)
    on = challenge_keys(keys.event, keys.user_log, EVENTS)
    both(lua, native, "EVALSHA", CHALLENGE.sha, len(on), *on, now, int(passed), kind, plan,
         86_400_000, "1" if split else "")
    rec = DecisionRecord.parse(lua.get(keys.event) or b"")
    return passed and rec is not None and "p" in rec and lua.get(keys.device_geo) != before


@pytest.mark.parametrize("split", [False, True], ids=["one-redis", "cluster-split"])
def test_the_module_answers_and_writes_as_decide_lua(servers: tuple[redis.Redis, redis.Redis, redis.Redis],
                                                     split: bool, tmp_path: Path) -> None:
    """Random traffic; with ``split``, each decision as the device's slot of Redis Cluster gets it:
    the user side's findings judged elsewhere (none, or some) and now and then the user's graph scores."""
    lua, native, replica = servers
    sha = lua.script_load(DECIDE.source)
    for server in (lua, native):  # (challenge results through the script on both servers)
        server.script_load(CHALLENGE.source)
    plan = parse_policy(POLICY).default.plan
    rng, side_rng, challenge_rng = random.Random(5), random.Random(6), random.Random(7)
    now = T0
    events: list[str] = []
    seen: dict[str, int] = {}
    fired: set[tuple[str, int]] = set()
    challenged: list[tuple[DecisionKeys, str]] = []  # challenged decisions: keys, kind
    moved = 0
    for i in range(1500):
        step = rng.choice([0, 1, 400, 1500, 4000, 9000, 30_000, 200_000])
        now += -rng.choice([1, 5000]) if rng.random() < 0.03 else step  # now and then the clock steps back
        if challenged and challenge_rng.random() < 0.15:  # (drawn apart: the rest of the traffic as before)
            moved += challenge_result(challenge_rng, now, challenged, split, plan, lua, native)
        device, user = rng.choice(DEVICES), rng.choice(USERS)
        if events and rng.random() < 0.08:  # a retry of an earlier event, the same request or another
            event_id = rng.choice(events)
            fingerprint = rng.choice(["fp", "fp2"])
        else:
            event_id, fingerprint = f"e{i}", "fp"
            events.append(event_id)
        ip = rng.choice(["203.0.113.9"] * 4 + [None])
        keys = decision_keys(event_id, device, user, ip)._replace(graph=GRAPH)
        outside_writes(rng, now, keys, device, user, events, lua, native)
        lat, lon = (repr(31.2 + rng.choice([0, 0.001, 2.0, -40.0])), repr(121.4 + rng.choice([0, 3.5]))) \
            if rng.random() < 0.4 else ("", "")
        arms = "".join(rng.choice("01") for _ in RULES) if rng.random() < 0.1 else ""
        args = decide_args(now=now, decision_id=f"{i:x}", user_id=user, device_id=device, plan=plan,
                           static=rng.choice(STATIC), lat=lat, lon=lon, arms=arms, fingerprint=fingerprint,
                           retention_ms=rng.choice([86_400_000, 86_400_000, 1]),
                           deadline=1 if rng.random() < 0.01 else "",  # long past: changes nothing
                           request=f'{{"n": {i}}}'.encode())
        if split:  # (drawn apart, so that the traffic is the same as on one Redis)
            found = side_rng.sample(USER_SIDE, side_rng.choice([0, 0, 0, 1, 2]))
            graph = side_rng.choice(["", "", "0.2000,0.1000", "0.9500,0.0100", "1,0.5000"])
            args = args._replace(user_side=user_side(encode_findings(found)), user_graph=graph)
        wire = args.wire()
        want = lua.evalsha(sha, len(keys), *keys, *wire)
        got = native.execute_command("RISK.DECIDE", len(keys), *keys, *wire)
        assert got == want, f"step {i}"
        kind = "late" if isinstance(want, list) and want[0] == b"late" else \
            want[0].decode() if isinstance(want, list) else f"decided {want[6:7].hex()}"
        seen[kind] = seen.get(kind, 0) + 1
        if isinstance(want, bytes):
            fired |= {(f[0], f[2]) for f in decode_findings(findings_of(want))}
            if want[6] == 1:
                challenged.append((keys, CHALLENGES[want[7]]))
        for key in {*keys} - {EVENTS}:
            assert snapshot(native, key) == snapshot(lua, key), f"step {i}: {key}"
    assert keyspace(native) == keyspace(lua)
    # The traffic reaches every path: new decisions of each kind, replays, conflicts, late calls.
    assert {"decided 00", "decided 01", "decided 02", "replay", "conflict", "late"} <= set(seen), seen
    # ... and every stateful rule fires, many of them both enforced and in shadow.
    assert {code for code, _ in fired} == {*RULES, "challenge_failures"}, sorted(fired)
    assert len({code for code, shadow in fired if shadow}) >= 8
    assert len({code for code, shadow in fired if not shadow}) >= 12
    # ... and passed challenges moved devices to their shares' positions, which later decisions read.
    assert moved >= 10, moved
    replicated(native, replica)
    replica_matches(replica, native)
    assert rebuilt_from_aof(native, tmp_path / "from-aof") == keyspace(native, ids=True)
    # Expiries are persisted and replicated as times (PXAT, PEXPIREAT), never as durations that a
    # later replay would start again: in a packed script (a uint32 length before each word) or alone.
    aof = aof_bytes(native)
    assert b"\x00\x00\x00\x04PXAT" in aof and b"\x00\x00\x00\x09PEXPIREAT" in aof
    for word in (b"PX", b"PEXPIRE"):
        assert struct.pack(">I", len(word)) + word + b"\x00" not in aof
        assert b"$%d\r\n%s\r\n" % (len(word), word) not in aof


def test_the_module_refuses_a_user_side_it_cannot_read(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """A user side without the mark, cut short, or with a severity decide.lua would judge
    otherwise is an error, and nothing is written."""
    _, native, _ = servers
    plan = parse_policy(POLICY).default.plan
    keys = decision_keys("e1", "d1", "u1", None)
    packed = encode_findings([USER_SIDE[2]])
    bad_severity = packed[:1 + 14] + b"\x03" + packed[1 + 15:]
    for side in (b"[]", user_side(packed)[:-1], user_side(packed[:10]), user_side(bad_severity), b"S\x00"):
        args = decide_args(now=T0, decision_id="1", user_id="u1", device_id="d1", plan=plan, user_side=side)
        with pytest.raises(redis.ResponseError, match="riskdecide: user side"):
            native.execute_command("RISK.DECIDE", len(keys), *keys, *args.wire())
    assert native.keys("*") == []
    with pytest.raises(redis.ResponseError, match="riskdecide"):
        native.execute_command("RISK.DECIDE", 3, "a", "b", "c", "x")


def test_a_record_of_the_previous_release_without_a_fingerprint_is_written_over(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """A hash under the record's key that holds no fingerprint is no earlier answer: both paths
    decide and write the string record over it (the module no longer holds the key then), and a
    retry of the event is a replay of that record."""
    lua, native, _ = servers
    sha = lua.script_load(DECIDE.source)
    plan = parse_policy(POLICY).default.plan
    keys = decision_keys("e-old", "d1", "u1", None)
    both(lua, native, "HSET", keys.event, "id", "old", "dec", "0")
    wire = decide_args(now=T0, decision_id="1", user_id="u1", device_id="d1", plan=plan).wire()
    for expect in (bytes, list):
        want = lua.evalsha(sha, len(keys), *keys, *wire)
        got = native.execute_command("RISK.DECIDE", len(keys), *keys, *wire)
        assert got == want and isinstance(want, expect)
        assert native.type(keys.event) == b"string"
        assert snapshot(native, keys.event) == snapshot(lua, keys.event)
    assert want[0] == b"replay"


def test_a_key_of_another_type_is_refused_alike(servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """The keys the module holds open from read to write (the record, the device's state, the
    user's log, the last position) answer WRONGTYPE when they hold a list, as decide.lua does,
    and nothing is written."""
    lua, native, _ = servers
    sha = lua.script_load(DECIDE.source)
    plan = parse_policy(POLICY).default.plan
    for n, name in enumerate(("event", "device_state", "user_log", "device_geo")):
        keys = decision_keys(f"e-type-{n}", "d1", "u1", None)
        both(lua, native, "RPUSH", getattr(keys, name), "x")
        wire = decide_args(now=T0, decision_id=str(n), user_id="u1", device_id="d1", plan=plan,
                           lat="31.2", lon="121.4").wire()
        with pytest.raises(redis.ResponseError) as want:
            lua.evalsha(sha, len(keys), *keys, *wire)
        with pytest.raises(redis.ResponseError) as got:
            native.execute_command("RISK.DECIDE", len(keys), *keys, *wire)
        assert "WRONGTYPE" in str(want.value) and "WRONGTYPE" in str(got.value), name
        assert keyspace(native) == keyspace(lua), name
        both(lua, native, "DEL", getattr(keys, name))


def junk(rng: random.Random, unit: int) -> bytes:
    """Random bytes: with ``unit``, whole entries of that size (a log's shape, any content)."""
    size = rng.choice([0, 1, 2, 5, 6, 7, 8, 11, 13, 22, 23, 40, 300]) if not unit else unit * rng.randrange(12)
    return bytes(rng.randrange(256) for _ in range(size))


def shaped(rng: random.Random, keys: DecisionKeys, shapes: bool) -> list[tuple[Any, ...]]:
    """Writes of malformed values into every key a decision reads (of each value's shape if ``shapes``)."""
    state = junk(rng, 0)
    if shapes:  # a share log of n entries, then users: (6-byte time, uint16 length, id) each
        log = junk(rng, 6)
        users = b"".join(junk(rng, 6)[:6].ljust(6, b"\0") + struct.pack(">H", len(u)) + u
                         for u in rng.sample([b"u1", b"u2", "用户".encode(), b""], rng.randrange(4)))
        state = struct.pack(">H", len(log) // 6) + log + users
    text = rng.choice([b"0.9,0.1", b",", b"x,1", b"1,", b"1e3,2,3", b" 0.5 ,1", b"0x10,1", b"inf,1", b"nan,1"])
    return [("SET", keys.device_state, state), ("SET", keys.user_log, junk(rng, 6 if shapes else 0)),
            ("SET", keys.device_outcomes, junk(rng, 11 if shapes else 0)),
            ("SET", keys.device_geo, junk(rng, 22 if shapes else 0)[:22] if shapes else junk(rng, 0)),
            ("HSET", keys.signals, rng.choice(["r", "l|u1", "c|u1"]),
             rng.choice([junk(rng, 0), b"3@99999999999999", b"1e1@99999999999999", b"0x5@99999999999999", b"3@1e20"])),
            ("HSET", GRAPH, rng.choice(["d:d1", "u:u1"]), text if shapes else junk(rng, 0)),
            ("HSET", keys.device_ban, "until", rng.choice([junk(rng, 0), b"12x", b" 5 ", b"1e30"])),
            ("SET", keys.event, junk(rng, 0)), ("HSET", keys.flags, "_points", rng.choice([junk(rng, 0), b"7", b"-2"]))]


def test_the_module_survives_what_no_writer_of_ours_stores(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """Malformed values in every key a decision reads, and plans with limits under 1: the server
    never crashes; where every value has its shape (whatever its content) and decide.lua answers,
    the module answers the same."""
    lua, native, _ = servers
    sha = lua.script_load(DECIDE.source)
    rng = random.Random(9)
    policy = parse_policy(POLICY).default.plan
    compared = 0
    for i in range(800):
        both(lua, native, "FLUSHALL")
        keys = decision_keys(f"e{i}", "d1", "u1", "203.0.113.9")._replace(graph=GRAPH)
        shapes = i % 2 == 0
        writes = shaped(rng, keys, shapes)
        chosen = rng.sample(writes, rng.randrange(len(writes) + 1))
        for command in chosen:
            both(lua, native, *command)
        plan = bytearray(policy)
        if rng.random() < 0.2:  # a count rule's limit (at offset 1 of its 24 bytes) under 1, or fractional
            rule = rng.randrange(4)
            plan[rule * 24 + 1:rule * 24 + 9] = struct.pack(">d", rng.choice([0.0, -1.0, 0.5, 2.5]))
        args = decide_args(now=T0 + i, decision_id=f"{i:x}", user_id="u1", device_id="d1", plan=bytes(plan),
                           lat="31.2", lon="121.4")
        try:
            want: Any = lua.evalsha(sha, len(keys), *keys, *args.wire())
        except redis.ResponseError:
            want = None
        try:
            got: Any = native.execute_command("RISK.DECIDE", len(keys), *keys, *args.wire())
        except redis.ResponseError as exc:
            got = f"{exc}"
        assert native.ping()
        if shapes and want is not None and plan == policy:
            compared += 1
            assert got == want, f"case {i}: {want!r} {got!r} {chosen}"
    assert compared >= 100
