"""The native module on a real Redis Cluster: each step of a decision goes to
its master as the module's command (``RISK.RESERVE`` and ``RISK.SETTLE`` on
the user's slot, ``RISK.DECIDE`` on the device's) where that master has the
module, as the Lua script elsewhere, and either way answers and writes the
same."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import ban_key, decision_keys
from riskservice.limits.native import MODULE, NATIVE_VERSION, NativeUnavailable
from riskservice.limits.records import DecisionRecord
from riskservice.policy.load import load_policy
from tests.cluster.nodes import Node
from tests.cluster_server import RedisClusterServer
from tests.limits.args import decide_args

PLAN = load_policy("config/policy.yaml").default.plan
T0 = 1_800_000_000_000


def masters(cluster: RedisClusterServer) -> list[Node]:
    return [n for n in cluster.nodes if n.role == "master" and n.alive]


def unload(node: Node) -> None:
    with node.client(5) as c:
        try:
            c.execute_command("MODULE", "UNLOAD", MODULE)
        except redis.ResponseError:
            pass  # not loaded


@pytest.fixture
def with_module(redis_cluster: RedisClusterServer, native_module: Path,
                redis_cluster_client: redis.RedisCluster) -> Iterator[list[Node]]:
    """The module loaded on every master of the session's cluster, unloaded after the test."""
    nodes = masters(redis_cluster)
    try:
        for node in nodes:
            with node.client(5) as c:
                c.execute_command("MODULE", "LOAD", str(native_module))
        yield nodes
    finally:
        for node in nodes:
            unload(node)


def share(store: ClusterStore, event: str, device: str, user: str, now: int, ip: str | None = None) -> DecisionRecord:
    keys = decision_keys(event, device, user, ip)
    args = decide_args(now=now, decision_id=f"id-{event}", user_id=user, device_id=device, plan=PLAN,
                       request=orjson.dumps({"event_id": event}))
    return store.decide(keys, args)


def calls(nodes: list[Node]) -> dict[int, dict[str, int]]:
    """Per master port: how many of the module's commands and EVALSHA it ran since its stats were reset."""
    out = {}
    for node in nodes:
        with node.client(5) as c:
            stats = c.info("commandstats")
        out[node.port] = {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                          for name in ("risk.reserve", "risk.decide", "risk.settle", "evalsha")}
    return out


def reset_stats(nodes: list[Node]) -> None:
    for node in nodes:
        with node.client(5) as c:
            c.config_resetstat()


def keyspace(nodes: list[Node]) -> dict[bytes, Any]:
    """Every key of every master: its type, value and whether it expires (streams by their fields)."""
    out: dict[bytes, Any] = {}
    for node in nodes:
        with node.client(5) as c:
            for key in sorted(c.keys("*")):
                kind = c.type(key).decode()
                value: Any = {"string": c.get, "hash": lambda k, c=c: sorted(c.hgetall(k).items()),
                              "zset": lambda k, c=c: c.zrange(k, 0, -1, withscores=True),
                              "stream": lambda k, c=c: [sorted(f.items()) for _, f in c.xrange(k)]}[kind](key)
                out[key] = (kind, value, c.pttl(key) > 0)
    return out


def traffic(store: ClusterStore, client: redis.RedisCluster) -> list[DecisionRecord]:
    """Shares of 4 users over 8 devices, in event time: device and user caps reached, a user
    banned and an ip banned for a while, an allowlisted device, replays."""
    rng = random.Random(3)
    out: list[DecisionRecord] = []
    sent: list[tuple[str, str, str, str | None]] = []
    now = T0
    for i in range(260):
        now += rng.choice([1, 200, 1000, 5000])
        if i == 60:
            client.hset(ban_key("user", "user-2"), mapping={"until": str(now + 120_000), "reason": "刷单"})
        if i == 90:
            client.hset(ban_key("ip", "203.0.113.7"), mapping={"until": str(now + 60_000), "reason": "proxy"})
        if i == 120:
            client.hset(decision_keys("x", "dev-3", "u", None).allowlist, mapping={"reason": "staff"})
        ip = rng.choice(["203.0.113.7", None, None])
        if i > 10 and rng.random() < 0.05:  # a retry of an earlier share
            event, device, user, ip = rng.choice(sent)
        else:
            event, device, user = f"e{i}", f"dev-{rng.randrange(8)}", f"user-{rng.randrange(4)}"
            sent.append((event, device, user, ip))
        out.append(share(store, event, device, user, now, ip))
        # Each share's settle lands before the next share: a place not yet released would count
        # against the user's window for a moment, which timing decides.
        store.flush()
    return out


def test_native_and_lua_answer_and_write_the_same_on_the_cluster(
        with_module: list[Node], redis_cluster_client: redis.RedisCluster) -> None:
    nodes = with_module
    answers, writes = {}, {}
    for mode in ("off", "on"):
        redis_cluster_client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        reset_stats(nodes)
        store = ClusterStore(redis_cluster_client, native=mode)
        answers[mode] = traffic(store, redis_cluster_client)
        writes[mode] = keyspace(nodes)
        ran = calls(nodes)
        # the second step went where the mode says, on every master
        if mode == "on":
            assert all(c["risk.decide"] > 0 and c["risk.reserve"] > 0 for c in ran.values()), ran
            assert sum(c["risk.decide"] for c in ran.values()) == 260, ran
            assert sum(c["risk.reserve"] for c in ran.values()) == 260, ran
            assert sum(c["risk.settle"] for c in ran.values()) > 200, ran
            assert sum(c["evalsha"] for c in ran.values()) == 0, ran
        else:
            assert all(c["risk.decide"] == c["risk.reserve"] == c["risk.settle"] == 0 for c in ran.values()), ran
        assert store.native.status()["path"] == ("native" if mode == "on" else "lua")
    assert answers["on"] == answers["off"]
    assert writes["on"] == writes["off"]
    # the traffic reaches what the user's slot judges, and what the device's does
    fired = {f[0] for a in answers["on"] for f in a.findings}
    assert {"user_daily_cap", "user_blocklist", "ip_blocklist", "device_velocity"} <= fired, fired
    assert {a.status for a in answers["on"]} == {"new", "replay"}


def test_a_master_without_the_module_decides_on_lua_and_says_so(
        redis_cluster: RedisClusterServer, with_module: list[Node], redis_cluster_client: redis.RedisCluster) -> None:
    nodes = with_module
    bare = nodes[0]
    unload(bare)
    store = ClusterStore(redis_cluster_client)  # auto
    status = store.native_status()
    assert status["path"] == "mixed" and status["module_version"] is None
    assert status["masters"] == {f"127.0.0.1:{n.port}": "lua" if n is bare else "native" for n in nodes}
    reset_stats(nodes)
    for i in range(60):
        share(store, f"m{i}", f"dev-{i}", f"user-{i}", T0 + i)
    store.flush()
    ran = calls(nodes)
    bare_ran = ran[bare.port]
    assert bare_ran["risk.decide"] == bare_ran["risk.reserve"] == bare_ran["risk.settle"] == 0, ran
    assert bare_ran["evalsha"] > 0
    assert all(ran[n.port]["risk.decide"] > 0 and ran[n.port]["risk.reserve"] > 0 and ran[n.port]["evalsha"] == 0
               for n in nodes if n is not bare), ran
    with pytest.raises(NativeUnavailable, match=f"redis master 127.0.0.1:{bare.port}: RISK_REDIS_NATIVE=on"):
        ClusterStore(redis_cluster_client, native="on")


def test_a_master_that_loses_the_module_falls_back_without_losing_the_decision(
        with_module: list[Node], redis_cluster_client: redis.RedisCluster) -> None:
    nodes = with_module
    store = ClusterStore(redis_cluster_client, native="on")
    assert store.native.status()["module_version"] == NATIVE_VERSION
    device = "dev-gone"
    first = share(store, "g1", device, "user-g", T0)
    master = next(n for n in nodes if store.node_of(decision_keys("g", device, "u", None).device_state).name
                  == f"127.0.0.1:{n.port}")
    unload(master)  # (the store's connections stay open: it learns of it from the reply)
    second = share(store, "g2", device, "user-g", T0 + 1)
    store.flush()
    # (the user's master may be the same one: one fallback either way, and none lost)
    assert (first.decision, second.decision, second.status) == (0, 0, "new")
    assert second.windows["device_velocity"][0] == 2  # the first share is counted, and the second once
    assert store.native.take_fallbacks() == 1
    assert store.native.status()["masters"][f"127.0.0.1:{master.port}"] == "lua"
