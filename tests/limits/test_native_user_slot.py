"""The native module's steps on a user's slot of Redis Cluster
(``RISK.RESERVE``, ``RISK.SETTLE``) against reserve.lua and settle.lua, on
random traffic: every reply and every key byte for byte, and a replica of
the module's server rebuilding the same keys from its replicated effects."""

from __future__ import annotations

import random
import time

import pytest
import redis

from riskservice.limits.cluster_io import RESERVE, SETTLE
from riskservice.limits.contract import RULES, decode_findings
from riskservice.limits.keys import ban_key, decision_keys, once_key, pending_key
from riskservice.policy.load import parse_policy
from tests.limits.args import RANDOM_TRAFFIC_POLICY
from tests.limits.twins import both, keyspace, replicated, snapshot

T0 = int(time.time() * 1000)
# The random-traffic policy with a user cap this traffic reaches often.
POLICY = RANDOM_TRAFFIC_POLICY.replace(b"user_daily_cap: {limit: 6,", b"user_daily_cap: {limit: 3,")
USERS = ["u1", "u2", "用户3"]


def test_the_module_reserves_and_settles_as_the_scripts(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    lua, native, replica = servers
    reserve, settle = lua.script_load(RESERVE.source), lua.script_load(SETTLE.source)
    plan = parse_policy(POLICY).default.plan
    rng = random.Random(11)
    now = T0
    held: list[tuple[str, str]] = []  # (user, event) reserved and not yet settled
    seen: dict[str, int] = {}
    fired: set[tuple[str, int]] = set()

    def call(script: str, command: str, keys: list[str], args: list[object]) -> object:
        want = lua.evalsha(script, len(keys), *keys, *args)
        got = native.execute_command(command, len(keys), *keys, *args)
        assert got == want, f"{command} {keys} {args}"
        for key in keys:
            assert snapshot(native, key) == snapshot(lua, key), f"{command}: {key}"
        return want

    for i in range(2500):
        now += -rng.choice([1, 3000]) if rng.random() < 0.03 else rng.choice([0, 1, 300, 2000, 9000, 40_000])
        user = rng.choice(USERS)
        log = decision_keys("e", "d", user, None).user_log
        pending = pending_key(log)
        roll = rng.random()
        if roll < 0.04:  # an analyst bans the user, for a while or for good, or lifts the ban
            if rng.random() < 0.6:
                until = rng.choice([0, now + 30_000, now - 1])
                both(lua, native, "HSET", ban_key("user", user), "until", str(until),
                     "reason", rng.choice(["刷单", "test"]))
            else:
                both(lua, native, "DEL", ban_key("user", user))
        elif roll < 0.55:  # a decision's first step
            if held and rng.random() < 0.1:  # a retry of a share still held
                user, event = rng.choice(held)
                log = decision_keys("e", "d", user, None).user_log
                pending = pending_key(log)
            else:
                event = f"ev{i}"
            arms = "".join(rng.choice("01") for _ in RULES) if rng.random() < 0.1 else ""
            deadline = 1 if rng.random() < 0.02 else ""  # long past: changes nothing
            status, found, reserved = call(reserve, "RISK.RESERVE", [log, ban_key("user", user), pending],
                                           [now, deadline, event, plan, rng.choice([2000, 5000]), arms])  # type: ignore[misc]
            kind = f"{status.decode()} {reserved}"
            seen[kind] = seen.get(kind, 0) + 1
            fired |= {(f[0], f[2]) for f in decode_findings(found)}
            if reserved == 1:
                held.append((user, event))
        elif roll < 0.93:  # the device's slot decided: the place is taken or released
            if held and rng.random() < 0.9:
                user, event = held.pop(rng.randrange(len(held)))
                log = decision_keys("e", "d", user, None).user_log
                pending = pending_key(log)
            else:
                event = f"ev{rng.randrange(i + 1)}"  # settled already, expired, or never held
            result = call(settle, "RISK.SETTLE", [log, pending], [event, rng.choice(["1", "1", "0"]), plan])
            seen[f"settle {result.decode()}"] = seen.get(f"settle {result.decode()}", 0) + 1  # type: ignore[union-attr]
        else:  # a share counted after the fact (a passed challenge, an outage): placed and taken at most once
            event = f"rc:ev{rng.randrange(i + 1)}"
            result = call(settle, "RISK.SETTLE", [log, pending, once_key(log, event)],
                          [event, "1", plan, f"{now},{now + 5000}"])
            seen[f"once {result.decode()}"] = seen.get(f"once {result.decode()}", 0) + 1  # type: ignore[union-attr]
    assert keyspace(native) == keyspace(lua)
    # The traffic reaches every path: places taken, refused, replayed, late; every settle outcome.
    assert {"ok 0", "ok 1", "ok 2", "late 0", "settle taken", "settle released", "settle none", "once taken",
            "once none"} <= set(seen), seen
    assert {("user_daily_cap", 0), ("user_daily_cap", 1), ("user_blocklist", 0)} <= fired, fired
    replicated(native, replica)
    assert keyspace(replica) == keyspace(native)


def test_the_module_refuses_what_the_scripts_are_never_sent(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    _, native, _ = servers
    plan = parse_policy(POLICY).default.plan
    for command in (("RISK.RESERVE", 2, "a", "b", 1, "", "e", plan, 5000, ""),
                    ("RISK.RESERVE", 3, "a", "b", "c", 1, "", "e", plan, "x", ""),
                    ("RISK.RESERVE", 3, "a", "b", "c", 1, "", "e", b"short", 5000, ""),
                    ("RISK.SETTLE", 2, "a", "b", "e", "1"),
                    ("RISK.SETTLE", 3, "a", "b", "c", "e", "1", plan)):
        with pytest.raises(redis.ResponseError, match="riskdecide"):
            native.execute_command(*command)
    native.hset("p", "e", "not a place")
    with pytest.raises(redis.ResponseError, match="riskdecide: a place held"):
        native.execute_command("RISK.RESERVE", 3, "a", "b", "p", 1, "", "x", plan, 5000, "")
    with pytest.raises(redis.ResponseError, match="riskdecide: a place held"):
        native.execute_command("RISK.SETTLE", 2, "a", "p", "e", "1", plan)
    native.set("s", "a string")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        native.execute_command("RISK.RESERVE", 3, "a", "b", "s", 1, "", "x", plan, 5000, "")
    assert native.ping()


def test_many_expired_places_reach_the_replica(servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """More expired places than one replicated script holds (the module replicates their HDEL
    alone): the replica still ends with the module server's keys, and both with the script's."""
    lua, native, replica = servers
    reserve = lua.script_load(RESERVE.source)
    plan = parse_policy(POLICY).default.plan
    log = decision_keys("e", "d", "u1", None).user_log
    keys = [log, ban_key("user", "u1"), pending_key(log)]
    places = {f"old{i}": f"{T0 - 9000},{T0 - 1000}" for i in range(700)}
    both(lua, native, "HSET", pending_key(log), *[x for kv in places.items() for x in kv])
    args = [T0, "", "new", plan, 5000, ""]
    want = lua.evalsha(reserve, len(keys), *keys, *args)
    assert native.execute_command("RISK.RESERVE", len(keys), *keys, *args) == want
    assert want[2] == 1  # the place is taken; the 700 expired ones are gone
    assert keyspace(native) == keyspace(lua)
    assert native.hkeys(pending_key(log)) == [b"new"]
    replicated(native, replica)
    assert keyspace(replica) == keyspace(native)
