"""A node restarted at the same address (qa14 D4): the connections a worker
kept to it are stale, and the first call on each must not be answered
degraded, open the master's breaker, or be logged as a master failure. A
write that fails on a stale connection reached nothing: the call is sent
again once on a fresh connection."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from riskservice.app import create_app
from riskservice.limits.keys import device_tag, user_tag
from riskservice.state import risk_state
from tests.cluster.nodes import poll
from tests.cluster.test_failover import ids_on
from tests.cluster_server import Node, RedisClusterServer
from tests.conftest import ISSUER, make_settings


@pytest.fixture
def cluster(fresh_cluster: RedisClusterServer) -> RedisClusterServer:
    """A fresh 3-master cluster (one of its nodes is restarted)."""
    return fresh_cluster


@pytest.fixture
def app(cluster: RedisClusterServer, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(cluster.url, tmp_path, redis_cluster=True, redis_budget_ms=400,
                                   breaker_cooldown_ms=60_000))
    yield app
    risk_state(app).store.close()


def restart(cluster: RedisClusterServer, node: Node) -> None:
    """Kill ``node`` and start it again on its port, with its cluster config
    (its id and slots), as an operator's restart does; wait until the cluster
    is whole again."""
    cluster.kill(node)
    cluster._spawn(node)
    cluster._wait_started(node, 20)
    node.alive = True
    poll("the cluster whole again", cluster._converged, 20)


def decide(app: Flask, event: str, device: str, user: str) -> dict[str, Any]:
    resp = app.test_client().post("/v1/decisions", json={"event_id": event, "device_id": device, "user_id": user,
                                                         "coupon_id": "c"}, headers=ISSUER)
    assert resp.status_code == 200
    return resp.get_json()  # type: ignore[no-any-return]


def reset_kept_connections(app: Flask, node: Node) -> None:
    """Make every connection the store keeps to ``node`` one the peer has
    reset: a byte written on it reaches the restarted server's host, which
    knows no such connection and answers with a reset, so the next write
    fails at once with a broken pipe (what qa14 saw)."""
    kept = risk_state(app).store._idle.get(f"127.0.0.1:{node.port}", [])
    assert kept
    for conn in kept:
        def reset(sock: Any = conn._sock) -> bool:
            try:
                sock.send(b"\r\n")
            except OSError:
                return True
            return False

        poll("a kept connection reset", reset, 5)


@pytest.mark.parametrize("stale", ["closed", "reset"])
def test_the_first_calls_after_a_restart_are_not_degraded(app: Flask, cluster: RedisClusterServer,
                                                          caplog: pytest.LogCaptureFixture, stale: str) -> None:
    victim = [n for n in cluster.nodes if n.role == "master"][1]
    # The device's slot and the user's slot both on the victim: both round trips meet a stale connection.
    devices = ids_on(victim, "d", device_tag, 3, True)
    users = ids_on(victim, "u", user_tag, 3, True)
    for i in range(3):
        assert decide(app, f"before-{i}", devices[i], users[i])["degraded"] is False
    risk_state(app).store.flush()  # (the settles too: their connections are the ones kept)
    restart(cluster, victim)
    if stale == "reset":
        reset_kept_connections(app, victim)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        answers = [decide(app, f"after-{i}", devices[i], users[i]) for i in range(3)]
        risk_state(app).store.flush()
    assert [a["degraded"] for a in answers] == [False] * 3
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith(("redis master failed",
                                                                                   "user-slot writes failed"))]
    assert failed == []
    # Replays find the records the resent calls wrote.
    assert decide(app, "after-0", devices[0], users[0])["decision_id"] == answers[0]["decision_id"]
    risk_state(app).store.flush()
