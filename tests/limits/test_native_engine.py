"""The native decide answers and stores exactly what decide.lua does.

The same traffic goes to two real Redis servers: one with the module, its
store sending ``RISK.DECIDE`` (``RISK_REDIS_NATIVE=on``), and one without,
its store sending ``EVALSHA`` of decide.lua (``off``). Every answer must be
equal, and so must both servers' data afterwards. These tests need the
module built from the tree: they are skipped only while the tree has no
``riskdecide.c`` (or the machine no C compiler).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import redis

from riskservice.app import create_app
from riskservice.errors import StorageError
from riskservice.limits.client import connect
from riskservice.limits.contract import RULES
from riskservice.limits.keys import EVENTS, decision_keys
from riskservice.limits.store import RedisStore
from riskservice.policy.load import load_policy, parse_policy
from tests.api.helpers import share
from tests.conftest import make_settings
from tests.limits.args import decide_args
from tests.limits.test_native import calls
from tests.limits.test_store import SMALL_POLICY, T0
from tests.redis_server import RedisServer

STEPS = 1200


def dump(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's type and value, and whether it expires (stream entries
    without their ids, which are the servers' clocks)."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"stream":
            value = [fields for _, fields in client.xrange(key)]
        else:
            raise AssertionError(f"{key!r}: unexpected type {kind!r}")
        out[key] = (kind, value, client.pttl(key) > 0)
    return out


GRAPH = "risk:graph:equivalence"


def side_data(client: redis.Redis) -> None:
    """What decisions read besides their windows, the same on both servers:
    graph scores, real-time signals (one ageing out during the run), bans
    (one lifted during the run, one a challenge cool-down), an allowlisted
    device and a device under review."""
    client.hset(GRAPH, mapping={"d:d1": "0.95,0.1,3", "u:u2": "0.5,0.7,40", "u:用户": "0.85,0.2,1"})
    later = T0 + 10**9
    client.hset("risk:{d:d2}:sig", mapping={"r": f"6@{later}", "l|u1": f"4@{later}", "c|u3": f"5@{T0 + 60_000}",
                                           "f|u2": f"3@{later}", "d|u1": f"4@{later}"})
    client.hset("risk:{d:d3}:ban", mapping={"until": T0 + 300_000, "reason": "spam", "actor": "a", "at": T0})
    client.hset("risk:{u:u4}:ban", mapping={"until": 0, "reason": "fraud", "actor": "a", "at": T0})
    client.hset("risk:{ip:203.0.113.9}:ban", mapping={"until": T0 + 900_000, "reason": "5 failed challenges",
                                                     "code": "challenge_failures"})
    client.hset("risk:{ip:198.51.100.4}:ban", mapping={"until": 0, "reason": "proxy", "actor": "a", "at": T0})
    client.set("risk:{d:d1}:allow", "1")
    client.hset("risk:{d:d2}:review", mapping={"status": "open"})


def test_random_traffic_gives_the_same_records_and_data(native_server: RedisServer, native_client: redis.Redis,
                                                        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    native = RedisStore(connect(native_server.url, 2000), native="on")
    lua = RedisStore(connect(redis_server.url, 2000), native="off")
    for client in (native_client, redis_client):
        side_data(client)
    native_client.script_flush()
    native_client.config_resetstat()
    late = outcomes = 0
    plans = [parse_policy(SMALL_POLICY).default.plan, load_policy("config/policy.yaml").default.plan]
    rng = random.Random(11)
    now = T0
    for i in range(STEPS):
        now += rng.choice([0, 1, 250, 1000, 3000, 9000, 20_000, -700])
        device, user = rng.choice(["d1", "d2", "d3"]), rng.choice(["u1", "u2", "u3", "u4", "用户"])
        # Now and then an earlier event again: a replay, or a conflict when its request differs.
        event = f"e{rng.randrange(i)}" if i and rng.random() < 0.05 else f"e{i}"
        fields: dict[str, Any] = {
            "static": [["fan_out", 1, 0, "sms", 11, 10, None, 0]] if rng.random() < 0.05 else [],
            "arms": "".join(rng.choice("01") for _ in RULES) if rng.random() < 0.2 else "",
            "fingerprint": rng.choice(["fp", "fp", "fp", "other"]),
            "recipients": rng.randint(0, 4),
            "request": b'{"n": %d}' % i,
        }
        if rng.random() < 0.5:  # a position, far away now and then (impossible travel)
            fields["lat"], fields["lon"] = (f"{31.2 + rng.choice([0, 0, 0.01, 9]):.4f}", "121.47")
        if rng.random() < 0.02:  # reached Redis after its deadline: changes nothing
            fields["deadline"] = now - 1
        plan = plans[i % 2 if rng.random() < 0.1 else 0]
        ip = rng.choice([None, "203.0.113.9", "198.51.100.4"])
        keys = decision_keys(event, device, user, ip, graph=GRAPH)
        args = decide_args(now=now, decision_id=f"id-{event}", user_id=user, device_id=device, plan=plan,
                           policy_version="test@1", **fields)
        if "deadline" in fields:
            for store in (native, lua):
                with pytest.raises(StorageError, match="after its deadline; nothing was recorded"):
                    store.decide(keys, args)
            late += 1
            continue
        got = native.decide(keys, args)
        assert got == lua.decide(keys, args), f"step {i}"
        if got.status == "new" and got.decision != 2 and rng.random() < 0.3:
            # Outcomes (decide.lua's success-rate rule reads them): RISK.OUTCOME against outcome.lua.
            claimed = int(rng.random() < 0.1)  # a low success rate, for its rule
            outcome = {"delivered": 1, "opened": claimed, "claimed": claimed, "window_ms": 86_400_000,
                       "cap": 200, "now_ms": now, "retention_ms": 86_400_000, "events": EVENTS}
            assert native.outcome(keys.event, **outcome) == lua.outcome(keys.event, **outcome), f"step {i}"
            outcomes += 1
    assert late > 0
    # Every decision and every outcome through the module.
    assert calls(native_client) == {"risk.decide": STEPS, "risk.outcome": outcomes}
    assert dump(native_client) == dump(redis_client)


def realistic(rng: random.Random, i: int) -> dict[str, Any]:
    device = "dev-banned" if rng.random() < 0.05 else f"dev-{rng.randrange(4)}"
    body: dict[str, Any] = {
        # Now and then an earlier event id with another request: a conflict.
        "event_id": f"ev-{rng.randrange(i)}" if i and rng.random() < 0.03 else f"ev-{i}",
        "device_id": device, "user_id": f"u-{rng.randrange(8)}", "coupon_id": f"cp-{rng.randrange(5)}",
        "merchant_id": f"m-{rng.randrange(3)}", "channel": rng.choice(["chat", "group", "moments"]),
        "ip": rng.choice(["203.0.113.7", "198.51.100.4"]),
        "recipients": [f"r-{rng.randrange(30)}" for _ in range(rng.randint(1, 4))],
        "text": rng.choice(["周末咖啡买一送一", "新店开业，邀请你领取一张8折优惠券", "a plain note"]),
    }
    if rng.random() < 0.7:
        body["geo"] = {"lat": 31.23 + rng.choice([0, 0.001, 8.0]), "lon": 121.47}
    return body


def test_the_engine_answers_the_same(native_server: RedisServer, native_client: redis.Redis,
                                     redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path,
                                     clock: Any) -> None:
    native = create_app(make_settings(native_server.url, tmp_path / "native", redis_native="on"), clock=clock)
    lua = create_app(make_settings(redis_server.url, tmp_path / "lua", redis_native="off"), clock=clock)
    assert native.extensions["risk"].store.native.path == "native"
    native_client.config_resetstat()
    for app in (native, lua):
        app.extensions["risk"].store.set_ban("device", "dev-banned", reason="test", actor="test")
    rng = random.Random(5)
    clients = native.test_client(), lua.test_client()
    answers: dict[str, int] = {}
    sent: list[dict[str, Any]] = []
    for i in range(400):
        clock.advance(rng.choice([0.0, 0.5, 2.0, 30.0, 400.0]))
        # Now and then an earlier request again: a replay.
        body = rng.choice(sent) if sent and rng.random() < 0.04 else realistic(rng, i)
        sent.append(body)
        got, want = (share(c, **body) for c in clients)
        # 409: an event id again with another request.
        assert got.status_code == want.status_code, f"request {i}"
        assert got.status_code in (200, 409), f"request {i}"
        g, w = dict(got.json or {}), dict(want.json or {})
        # A new decision's id is random; a replay's is the first answer's, of its own server.
        g.pop("decision_id", None), w.pop("decision_id", None)
        assert g == w, f"request {i}"
        assert got.headers.get("Idempotent-Replayed") == want.headers.get("Idempotent-Replayed"), f"request {i}"
        kind = "replay" if got.headers.get("Idempotent-Replayed") else g.get("decision", "conflict")
        answers[kind] = answers.get(kind, 0) + 1
    # The traffic reached every kind of answer, through the module.
    assert set(answers) == {"allow", "challenge", "block", "replay", "conflict"}, answers
    assert calls(native_client)["risk.decide"] == 400
    assert "evalsha" not in calls(native_client)
