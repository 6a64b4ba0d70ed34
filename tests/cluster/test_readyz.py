"""``/readyz`` on a partial Redis Cluster (qa14 D1): it answers well within a
load balancer's 1 s probe time-out whatever a master does (refuses, or hangs
under SIGSTOP), says ``degraded`` with ``200`` while some master serves its
slots, and ``503`` only when no master does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from riskservice.api.schemas import Ready
from riskservice.app import create_app
from riskservice.limits.keys import device_tag, user_tag
from riskservice.state import risk_state
from tests.cluster.test_failover import ids_on
from tests.cluster_server import Node, RedisClusterServer
from tests.conftest import ISSUER, make_settings

# What /readyz may take: its probes wait at most about 0.4 s (connect, then
# answer); the rest is room for this shared 2-core machine.
PROBE_CEILING_S = 0.9


@pytest.fixture
def cluster(fresh_cluster: RedisClusterServer) -> RedisClusterServer:
    """A fresh 3-master cluster without replicas: a master stopped here stays down."""
    return fresh_cluster


@pytest.fixture
def app(cluster: RedisClusterServer, tmp_path: Path) -> Iterator[Flask]:
    # A budget larger than the default, as in test_failover.py: on this shared
    # machine a healthy slot's answer is otherwise sometimes late (degraded).
    # The service's clients then time out in 200 ms; the probe has its own.
    app = create_app(make_settings(cluster.url, tmp_path, redis_cluster=True, redis_budget_ms=400,
                                   breaker_cooldown_ms=25))
    yield app
    risk_state(app).store.close()


def readyz(app: Flask) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    resp = app.test_client().get("/readyz")
    return resp.status_code, resp.get_json(), time.perf_counter() - started


def victim_of(cluster: RedisClusterServer) -> Node:
    # (not the node the service's client was seeded from)
    return [n for n in cluster.nodes if n.role == "master"][1]


def decide(app: Flask, event: str, device: str, user: str) -> dict[str, Any]:
    resp = app.test_client().post("/v1/decisions", json={"event_id": event, "device_id": device, "user_id": user,
                                                         "coupon_id": "c"}, headers=ISSUER)
    assert resp.status_code == 200
    return resp.get_json()  # type: ignore[no-any-return]


def test_a_healthy_cluster_is_ready(app: Flask) -> None:
    code, body, _ = readyz(app)
    assert (code, body["status"], body["redis"]) == (200, "ready", "ok")
    assert body["cluster"]["ok"] and body["cluster"]["serving"] == 3
    assert [m["status"] for m in body["cluster"]["masters"]] == ["ok"] * 3


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_master_down_is_degraded_200_and_answered_at_once(app: Flask, cluster: RedisClusterServer,
                                                            how: str) -> None:
    victim = victim_of(cluster)
    slots = ",".join(f"{a}-{b}" for a, b in victim.slots)
    assert readyz(app)[0] == 200
    if how == "killed":
        cluster.kill(victim)
    else:
        cluster.pause(victim)
    try:
        for _ in range(3):  # (not only the first: no probe may leave a connection that hangs the next)
            code, body, elapsed = readyz(app)
            assert elapsed < PROBE_CEILING_S, elapsed
            assert (code, body["status"], body["redis"]) == (200, "degraded", "degraded")
            Ready.model_validate(body)  # (as the OpenAPI document describes it)
            down = [m for m in body["cluster"]["masters"] if m["status"] != "ok"]
            assert [(m["node"], m["slots"]) for m in down] == [(f"127.0.0.1:{victim.port}", slots)]
            assert down[0]["status"].startswith("down: ")
            assert body["cluster"]["serving"] == 2 and not body["cluster"]["ok"]
            # {signals} is on the victim's slots (8817): its heartbeat is not asked for.
            assert body["signals"] == {"state": "unknown"}
        # What "degraded" promises: shares whose slots the others serve are decided from Redis.
        device, user = ids_on(victim, "d", device_tag, 1, False)[0], ids_on(victim, "u", user_tag, 1, False)[0]
        assert decide(app, "served", device, user)["degraded"] is False
    finally:
        if how == "hung":
            cluster.resume(victim)
    if how == "hung":
        assert readyz(app)[1]["status"] == "ready"


def test_no_master_answering_is_503(app: Flask, cluster: RedisClusterServer) -> None:
    masters = [n for n in cluster.nodes if n.role == "master"]
    for node in masters[:2]:
        cluster.kill(node)
    cluster.pause(masters[2])  # (the last one hangs rather than refuses)
    try:
        code, body, elapsed = readyz(app)
        assert elapsed < PROBE_CEILING_S, elapsed
        assert (code, body["status"], body["redis"]) == (503, "unavailable", "unreachable")
        assert body["cluster"]["serving"] == 0
    finally:
        cluster.resume(masters[2])
