"""The native module's share outcomes (``RISK.OUTCOME``) against outcome.lua,
on random traffic: every reply and every key byte for byte (the records, the
success-rate logs, the event stream; records of challenged shares that keep
their position after their results, and the positions a passed challenge
moves devices to; a pass that a ban held, which has no outcome), a replica of the module's server rebuilding the same
keys; and through the store, a record of the previous release (a hash)
answered by outcome.lua."""

from __future__ import annotations

import random
import time

import redis

from riskservice.limits.client import connect
from riskservice.limits.keys import EVENTS, challenge_keys, decision_keys, device_prefix, new_decision_id
from riskservice.limits.records import DecisionRecord
from riskservice.limits.scripts import CHALLENGE, DECIDE, OUTCOME
from riskservice.limits.store import RedisStore
from riskservice.policy.load import parse_policy
from tests.limits.args import RANDOM_TRAFFIC_POLICY, decide_args
from tests.limits.twins import both, keyspace, replica_matches, replicated, snapshot
from tests.redis_server import RedisServer

T0 = int(time.time() * 1000)
DEVICES = ["d1", "d2", "d3"]
BLOCKED = [["sensitive_copy", 2, 0, "", "x", None, None, 0]]


def outcome_keys(record_key: str) -> list[str]:
    return [record_key, f"{device_prefix(record_key)}:outcomes", EVENTS]


def test_the_module_reports_outcomes_as_outcome_lua(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    lua, native, replica = servers
    decide, outcome, challenge = (lua.script_load(s.source) for s in (DECIDE, OUTCOME, CHALLENGE))
    for script in (DECIDE, CHALLENGE):  # both servers decide alike, through the scripts
        native.script_load(script.source)
    plan = parse_policy(RANDOM_TRAFFIC_POLICY).default.plan
    rng = random.Random(17)
    now = T0
    records: list[tuple[str, str]] = []  # (record key, device)
    challenged: list[tuple[str, str]] = []  # the same, of challenged shares
    counts: dict[str, tuple[int, int, int]] = {}
    seen: dict[str, int] = {}
    for i in range(2500):
        now += -rng.choice([1, 2000]) if rng.random() < 0.03 else rng.choice([0, 1, 500, 3000, 20_000, 90_000])
        roll = rng.random()
        if roll < 0.35 or not records:  # a decision: allowed, refused, on either id form
            device, user = rng.choice(DEVICES), f"u{rng.randrange(5)}"
            keys = decision_keys(f"e{i}", device, user, None)
            # this release's ids, and the previous release's (hex; a slot tag on a cluster)
            decision_id = rng.choice([new_decision_id(device, keys.event), f"{rng.getrandbits(64):016x}",
                                      f"s{rng.randrange(16384)}-{i}", f"{i}"])
            # (a position now and then, near or far: a challenged share keeps it in its record)
            lat = rng.choice(["", "", "31.2", "33.2"])
            args = decide_args(now=now, decision_id=decision_id, user_id=user, device_id=device, plan=plan,
                               recipients=rng.choice([0, 1, 2, 4]), static=BLOCKED if rng.random() < 0.1 else None,
                               lat=lat, lon="121.4" if lat else "")
            both(lua, native, "EVALSHA", decide, len(keys), *keys, *args.wire())
            records.append((keys.event, device))
            decided = DecisionRecord.parse(lua.get(keys.event) or b"")
            if decided and decided["dec"] == 1:
                challenged.append((keys.event, device))
        elif roll < 0.43:  # a challenge result on a decision (passed: the share now counts, the device moves)
            key, device = rng.choice(challenged if challenged and rng.random() < 0.8 else records)
            keys = list(challenge_keys(key, "risk:{u:x}:log", EVENTS))
            both(lua, native, "EVALSHA", challenge, len(keys), *keys, now, rng.choice([1, 1, 0]),
                 rng.choice(["captcha", "captcha", "sms"]), plan, 86_400_000)
        elif roll < 0.45:  # a device banned (a pass then counts nothing: no share to report on) or let go
            ban = f"risk:{{d:{rng.choice(DEVICES)}}}:ban"
            if rng.random() < 0.5:
                both(lua, native, "DEL", ban)
            else:
                both(lua, native, "HSET", ban, "reason", "r", "until", rng.choice([0, now + 30_000]),
                     "code", rng.choice(["", "challenge_failures"]))
        else:  # an outcome report: first, again, more, fewer, too many; of a record or of none
            key = rng.choice(records)[0] if rng.random() < 0.95 else f"risk:{{d:d1}}:ev:none{i}"
            dl, op, cl = counts.get(key, (0, 0, 0))
            step = rng.random()
            if step < 0.6:
                dl, op, cl = dl + rng.choice([0, 1, 2]), op + rng.choice([0, 1]), cl + rng.choice([0, 0, 1])
            elif step < 0.7 and dl > 0:
                dl -= 1
            elif step < 0.75:
                dl += 5
            args = [rng.choice([now, now, now, now + 100_000]), dl, op, cl, rng.choice([60_000, 300_000]),
                    rng.choice([2, 3, 100]), rng.choice([86_400_000, 86_400_000, 1])]
            keys = outcome_keys(key)
            want = lua.evalsha(outcome, 3, *keys, *args)
            got = native.execute_command("RISK.OUTCOME", 3, *keys, *args)
            assert got == want, f"step {i}: {key} {args}"
            status = want[0].decode()
            seen[status] = seen.get(status, 0) + 1
            if status == "not_a_share" and (DecisionRecord.parse(want[1]) or {}).get("held"):
                seen["held"] = seen.get("held", 0) + 1
            if status == "ok":
                counts[key] = (dl, op, cl)
            for k in keys[:2]:
                assert snapshot(native, k) == snapshot(lua, k), f"step {i}: {k}"
    assert keyspace(native) == keyspace(lua)
    assert {"ok", "replay", "decreased", "too_many", "not_found", "not_a_share", "held"} <= set(seen), seen
    assert seen["ok"] >= 300
    # Outcomes reached passed challenges whose records keep a position after their results.
    stored = [DecisionRecord.parse(lua.get(key) or b"") for key in {key for key, _ in records}]
    assert sum(1 for rec in stored if rec and "p" in rec and "o" in rec and rec.get("cs") == "passed") >= 5
    assert lua.keys("risk:{d:*}:geo")
    replicated(native, replica)
    replica_matches(replica, native)


def test_a_record_of_the_previous_release_goes_to_outcome_lua(
        native_server: RedisServer, native_client: redis.Redis) -> None:
    store = RedisStore(connect(native_server.url, 2000), breaker_cooldown_ms=0, budget_ms=2000, native="on")
    plan = parse_policy(RANDOM_TRAFFIC_POLICY).default.plan
    keys = decision_keys("e1", "d1", "u1", None)
    store.decide(keys, decide_args(now=T0, decision_id="abc", user_id="u1", device_id="d1", plan=plan))
    old = decision_keys("e0", "d1", "u0", None).event
    native_client.hset(old, mapping={"id": "old", "u": "u0", "r": 2, "t": T0, "dec": 0, "c": 1})
    native_client.config_resetstat()
    report = {"delivered": 1, "opened": 1, "claimed": 1, "window_ms": 86_400_000, "cap": 100, "now_ms": T0 + 5,
              "retention_ms": 86_400_000, "events": EVENTS}
    status, rec = store.outcome(keys.event, **report)
    assert (status, rec and rec["o"]) == ("ok", [1, 1, 1, T0 + 5])
    status, rec = store.outcome(old, **report)
    assert (status, rec and rec["o"]) == ("ok", [1, 1, 1, T0 + 5])
    stats = {name.lower(): int(stat["calls"]) for name, stat in native_client.info("commandstats").items()}
    # the string record by the module; the hash record tried there, then by the script (loaded on NOSCRIPT)
    assert stats["cmdstat_risk.outcome"] == 2 and stats["cmdstat_evalsha"] >= 1
    assert store.native.path == "native" and store.native.fallbacks == 0


def test_a_trim_that_empties_the_stream_reaches_the_replica_as_such(
        servers: tuple[redis.Redis, redis.Redis, redis.Redis]) -> None:
    """An outcome reported at a time far past the server clock, with a short retention,
    trims every node of the event stream, its own new entry's too. Redis replicates
    such a trim of ``XADD ... MINID ~`` as a ``MINID`` past every id; the module once
    sent its new entry's id instead, and the replica kept that entry (the divergence
    of docs/operations.md, "Replicas and the share-event stream")."""
    lua, native, replica = servers
    decide, outcome = (lua.script_load(s.source) for s in (DECIDE, OUTCOME))
    native.script_load(DECIDE.source)
    plan = parse_policy(RANDOM_TRAFFIC_POLICY).default.plan
    keys = decision_keys("e1", "d1", "u1", None)
    # a hex id of the previous release whose first character trims (common.lua append_event())
    args = decide_args(now=T0, decision_id="0123456789abcdef", user_id="u1", device_id="d1", plan=plan,
                       recipients=1, static=None)
    both(lua, native, "EVALSHA", decide, len(keys), *keys, *args.wire())
    report = [T0 + 86_400_000, 1, 1, 0, 60_000, 100, 1]  # a day later; events kept 1 ms
    want = lua.evalsha(outcome, 3, *outcome_keys(keys.event), *report)
    assert native.execute_command("RISK.OUTCOME", 3, *outcome_keys(keys.event), *report) == want
    assert native.xlen(EVENTS) == lua.xlen(EVENTS) == 0
    replicated(native, replica)
    assert keyspace(replica, ids=True) == keyspace(native, ids=True)
