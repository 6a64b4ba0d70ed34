"""Every rule of the decision script against the in-memory reference, on
random traffic: windows, success rate, travel, graph scores, real-time
signals (and which of a signal and the graph score is the reason), bans,
allowlist; and challenge results (a pass counts the share and moves the
device to its position unless a ban blocks the device, failures cool the
device down)."""

from __future__ import annotations

import random
import time

import redis

from riskservice.limits.client import connect
from riskservice.limits.contract import FIRST_SIGNAL, RULES, signal_field
from riskservice.limits.geo import haversine_km
from riskservice.limits.keys import EVENTS, decision_keys
from riskservice.limits.memory import MemoryStore
from riskservice.limits.records import DecisionRecord
from riskservice.limits.store import RedisStore
from riskservice.policy.load import parse_policy
from tests.limits.args import RANDOM_TRAFFIC_POLICY as POLICY
from tests.limits.args import decide_args
from tests.redis_server import RedisServer

# Now: a timed ban's key expires on the real clock a day after its end.
T0 = int(time.time() * 1000)
GRAPH = "risk:graph:v1:fast"


def test_every_rule_matches_the_reference_on_random_traffic(redis_server: RedisServer,
                                                             redis_client: redis.Redis) -> None:
    store = RedisStore(connect(redis_server.url, 1000))
    ref = MemoryStore()
    policy = parse_policy(POLICY)
    plan = policy.default.plan
    # (a seed whose traffic reaches every rule at least five times)
    rng = random.Random(13)
    signal_rng = random.Random(12)
    challenge_rng = random.Random(14)  # (its own, so that the rest of the traffic is drawn as before)
    now = T0
    fired: dict[str, int] = {}
    allowed: list[tuple[str, str, DecisionRecord]] = []  # (device, record key, record) of shares to report on
    challenged: list[tuple[str, str, str]] = []  # (record key, user log key, kind) of challenges to answer
    results: dict[str, int] = {}
    moved: dict[str, tuple[int, float, float]] = {}  # device -> its position before a pass moved it (ms, lat, lon)
    spared = 0  # shares a pass spared a travel challenge: far from before the pass, not refused for travel
    for i in range(2000):
        now += rng.choice([0, 1, 400, 1500, 4000, 9000, 30_000])
        if challenged and challenge_rng.random() < 0.2:  # a challenge result, before this step's decision
            # (mostly the latest: people answer a challenge when it is asked; now and then an old one)
            latest = challenge_rng.random() < 0.7
            record_key, user_log, kind = challenged.pop(-1 if latest else challenge_rng.randrange(len(challenged)))
            passed = challenge_rng.random() < 0.9
            kind = kind if challenge_rng.random() < 0.95 else ("sms" if kind == "captcha" else "captcha")
            share_device = record_key.split("{d:", 1)[1].split("}", 1)[0]
            before = ref.positions.get(f"risk:{{d:{share_device}}}:state")
            status, rec, cooled = store.challenge(record_key, user_log, passed=passed, kind=kind, plan=plan,
                                                  now_ms=now, retention_ms=86_400_000, events=EVENTS)
            assert (status, cooled) == ref.challenge(record_key, user_log, passed=passed, kind=kind, plan=plan,
                                                     now_ms=now), f"step {i}"
            # (a pass while a ban blocks the device is recorded, not counted: the record names the ban)
            held = (rec or {}).get("held")
            assert held == ref.held.get(record_key), f"step {i}"
            seen = f"{status} {'passed' if passed else 'failed'}{' cooled' if cooled else ''}{' held' if held else ''}"
            results[seen] = results.get(seen, 0) + 1
            after = ref.positions.get(f"risk:{{d:{share_device}}}:state")
            if before is not None and after is not None and after[1:] != before[1:]:
                moved[share_device] = before
            if status == "kind_mismatch":
                challenged.append((record_key, user_log, "sms" if kind == "captcha" else "captcha"))
            elif challenge_rng.random() < 0.1:  # answered again later: a replay, or a conflict
                challenged.append((record_key, user_log, kind))
        device, user = rng.choice(["d1", "d2", "d3"]), rng.choice(["u1", "u2", "u3", "u4"])
        keys = decision_keys(f"e{i}", device, user, "203.0.113.9")._replace(graph=GRAPH)
        event = rng.random()
        if event < 0.03:  # an analyst bans or lifts a ban
            key, kind, entity = rng.choice([(keys.device_ban, "device", device), (keys.user_ban, "user", user),
                                            (keys.ip_ban, "ip", "203.0.113.9")])
            if rng.random() < 0.3:
                # The ip is every share's: a ban of it only for a while, or it would refuse everything.
                until = now + 20_000 if kind == "ip" else rng.choice([0, now + 20_000])
                store.set_ban(kind, entity, reason="test", actor="t", until_ms=until)
                ref.set_ban(key, "test", until)
            else:
                store.clear_ban(kind, entity)
                ref.bans.pop(key, None)
        elif event < 0.05:  # allowlisted, or not any more
            if keys.allowlist in ref.allowlisted:
                redis_client.delete(keys.allowlist)
                ref.allowlisted.discard(keys.allowlist)
            else:
                redis_client.hset(keys.allowlist, mapping={"reason": "t"})
                ref.allowlisted.add(keys.allowlist)
        elif event < 0.06:  # a batch writes graph scores
            node = rng.choice([f"d:{device}", f"u:{user}"])
            anomaly, kol = rng.choice([0.05, 0.3, 0.7, 0.8, 0.93]), round(rng.random(), 4)
            redis_client.hset(GRAPH, node, f"{anomaly:.4f},{kol:.4f}")
            ref.scores[node] = (anomaly, kol)
        elif event < 0.35 and allowed:  # an outcome for an earlier allowed share, once
            share_device, record_key, rec = allowed.pop(rng.randrange(len(allowed)))
            claimed = rng.choice([0, 0, 1])
            status, _ = store.outcome(record_key, delivered=1, opened=1, claimed=claimed, window_ms=90_000, cap=100,
                                      now_ms=now, retention_ms=86_400_000, events=EVENTS)
            assert status == "ok"
            ref.record_outcome(decision_keys("x", share_device, "x", None), rec.ts_ms, claimed >= 1)
        elif 0.35 <= event < 0.39:  # the signal consumer writes an observed value (valid until a time)
            code = signal_rng.choice(RULES[FIRST_SIGNAL - 1:])
            field = signal_field(code, user)
            value = f"{signal_rng.choice([1, 2, 3, 4, 5, 7])}@{now + signal_rng.choice([-1, 0, 1, 20_000, 300_000])}"
            redis_client.hset(keys.signals, field, value)
            ref.signals.setdefault(keys.signals, {})[field] = value
        # (a far position now and then: a refused one does not move the device, so a far one repeats
        # its refusals until a share from near counts)
        lat, lon = (repr(31.2 + rng.choice([0, 0, 0, 0.001, 2.0])), repr(121.4)) if rng.random() < 0.4 else ("", "")
        static = [["fan_out", 1, 0, "sms", 11, 10, None, 0]] if rng.random() < 0.05 else []
        arms = "".join(rng.choice("01") for _ in RULES) if rng.random() < 0.1 else ""
        args = decide_args(now=now, decision_id=f"id{i}", user_id=user, device_id=device, plan=plan,
                           static=static, lat=lat, lon=lon, arms=arms)
        got, want = store.decide(keys, args), ref.decide(keys, args)
        assert (got.decision, got.challenge, got.findings, got.windows, got.consumed) == \
               (want.decision, want.challenge, want.findings, want.windows, want.consumed), f"step {i}"
        if lat and device in moved:
            # The first share with a position after a pass moved the device: from where the device
            # was before, would it have been too fast? Then the pass spared it a travel challenge.
            t, was_lat, was_lon = moved.pop(device)
            travel = [f for f in got.findings if f[0] == "impossible_travel"]
            km = haversine_km(was_lat, was_lon, float(lat), float(lon))
            kmh = km / (max(now - t, 1000) / 3_600_000)  # (the policy's: over 500 km/h, at least 1 km)
            spared += int(not travel and km >= 1 and kmh > 500)
        if got.consumed:
            allowed.append((device, keys.event, got))
        elif got.decision == 1:
            challenged.append((keys.event, keys.user_log, got.challenge))
        for f in got.findings:
            fired[f[0]] = fired.get(f[0], 0) + 1
    store.close()
    # The traffic reaches every rule, and shadows and the allowlist (shadow findings).
    assert set(fired) == {*RULES, "fan_out", "challenge_failures"}, fired
    assert min(fired.values()) >= 5, str(sorted(fired.items()))
    # ... and every challenge result: passes, failures, cool-downs, replays, wrong kinds; passes
    # that moved a device, and later shares from there that the move spared a travel challenge.
    assert {"ok passed", "ok failed", "ok failed cooled", "kind_mismatch passed", "replay passed",
            "ok passed held"} <= set(results), results
    assert {"conflict passed", "conflict failed"} & set(results), results
    assert spared >= 3, (spared, results)
