"""Failover under load: a real cluster of 3 masters with a replica each, the
service answering real requests (Flask's test client, several threads) while
one master is killed with SIGKILL.

The service must keep answering: degraded only for shares whose slots the
dead master served and only until its replica is promoted, never a 5xx,
never past the budget; ``/readyz`` names the master that is down and its
slots (``200``, ``degraded``); answers stop being degraded on their own. The
test also measures what acknowledged shares the failover lost (decisions
answered from Redis whose record the promoted replica does not have): with
``RISK_REDIS_WAIT_REPLICAS=1`` none may be lost. With the native module
loaded on every node, the promoted replica takes its master's steps as the
module's commands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from riskservice.app import create_app
from riskservice.limits.keys import decision_keys, device_tag, user_tag
from riskservice.limits.slots import key_slot
from riskservice.state import risk_state
from tests.cluster.nodes import poll
from tests.cluster_server import Node, RedisClusterServer
from tests.conftest import ISSUER, make_settings


@dataclass
class Answer:
    event: str
    device: str
    user: str
    status: int
    degraded: bool
    elapsed_s: float
    at: float


def slot_on(node: Node, key: str) -> bool:
    return any(first <= key_slot(key) <= last for first, last in node.slots)


def ids_on(node: Node, prefix: str, tag: Any, count: int, inside: bool) -> list[str]:
    """``count`` ids whose keys are (or are not) served by ``node``."""
    out, i = [], 0
    while len(out) < count:
        name = f"{prefix}{i}"
        if slot_on(node, tag(name)) == inside:
            out.append(name)
        i += 1
    return out


class Load:
    """Threads sharing through the app until stopped; every answer is kept."""

    def __init__(self, client: FlaskClient, pairs: list[tuple[str, str]], threads: int = 4) -> None:
        self.client, self.pairs = client, pairs
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(t, threads)) for t in range(threads)]

    def _run(self, offset: int, step: int) -> None:
        n = offset
        while not self._stop.is_set():
            device, user = self.pairs[n % len(self.pairs)]
            event = f"ev-{n}"
            body = {"event_id": event, "device_id": device, "user_id": user, "coupon_id": "c"}
            started = time.perf_counter()
            resp = self.client.post("/v1/decisions", json=body, headers=ISSUER)
            elapsed = time.perf_counter() - started
            data = resp.get_json() or {}
            with self._lock:
                self.answers.append(Answer(event, device, user, resp.status_code, bool(data.get("degraded")),
                                           elapsed, time.monotonic()))
            n += step

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


@pytest.fixture
def cluster(redis_cluster_with_replicas: RedisClusterServer) -> RedisClusterServer:
    return redis_cluster_with_replicas


def make_app(cluster: RedisClusterServer, tmp_path: Path, wait: int, budget_ms: int) -> Flask:
    settings = make_settings(cluster.url, tmp_path, redis_cluster=True, redis_budget_ms=budget_ms,
                             breaker_cooldown_ms=25, redis_wait_replicas=wait)
    return create_app(settings)


# Budgets larger than the default, so that on this shared, often overloaded
# machine a healthy slot's answer is not degraded for want of a core (which
# would blur what the failover degrades). With WAIT, a promoted master has no
# replica left (its old master is dead), so every WAIT on it runs to its
# time-out, a quarter of the budget.
@pytest.fixture(params=[(0, 400, False), (1, 600, False), (0, 400, True)],
                ids=["async", "wait-1-replica", "native-module"])
def app(request: pytest.FixtureRequest, cluster: RedisClusterServer, tmp_path: Path) -> Iterator[Flask]:
    wait, budget_ms, native = request.param
    if native:
        module = request.getfixturevalue("native_module")
        for node in cluster.nodes:  # replicas too, as docs/architecture.md says to
            with node.client(5) as c:
                c.execute_command("MODULE", "LOAD", str(module))
    app = make_app(cluster, tmp_path, wait, budget_ms)
    assert risk_state(app).store.native_status()["path"] == ("native" if native else "lua")
    yield app
    risk_state(app).store.close()


def test_a_master_dies_under_load(app: Flask, cluster: RedisClusterServer, caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client()
    victim = next(n for n in cluster.nodes if n.role == "master")
    victim_slots = ",".join(f"{a}-{b}" for a, b in victim.slots)  # (the map forgets them after the failover)
    # Half the shares have their device on the victim; the other half touch only the other masters.
    on = list(zip(ids_on(victim, "dv", device_tag, 40, True), ids_on(victim, "uv", user_tag, 40, False),
                  strict=True))
    off = list(zip(ids_on(victim, "dh", device_tag, 40, False), ids_on(victim, "uh", user_tag, 40, False),
                   strict=True))
    wait = risk_state(app).settings.redis_wait_replicas
    budget_s = risk_state(app).settings.redis_budget_ms / 1000
    for i, (device, user) in enumerate(on[:2] + off[:2]):  # warm up: scripts loaded, connections open
        client.post("/v1/decisions", json={"event_id": f"warm-{i}", "device_id": device, "user_id": user,
                                           "coupon_id": "c"}, headers=ISSUER)
    with Load(client, [p for pair in zip(on, off, strict=True) for p in pair]) as load:
        poll("answers before the kill", lambda: load.count() >= 200, 30)
        killed_at = time.monotonic()
        cluster.kill(victim)
        poll("a degraded answer", lambda: any(a.degraded for a in load.answers), 10)
        ready = client.get("/readyz")
        body = ready.get_json()
        # The other masters serve their slots: degraded, but worth routing to (200).
        assert ready.status_code == 200 and body["status"] == "degraded" and body["redis"] == "degraded"
        down = [m for m in body["cluster"]["masters"] if m["status"] != "ok"]
        assert [m["node"] for m in down] == [f"127.0.0.1:{victim.port}"]
        assert down[0]["slots"] == victim_slots
        new_master = cluster.wait_for_failover(victim)
        promoted_at = time.monotonic()
        # Answers stop being degraded on their own, and /readyz says ready again.
        poll("/readyz ready", lambda: client.get("/readyz").get_json()["status"] == "ready", 20)
        mark = load.count()
        poll("answers after the failover", lambda: load.count() >= mark + 200, 30)
    answers = load.answers
    assert {a.status for a in answers} == {200}  # never a 5xx (nor a 4xx)
    # Two round trips, each within the budget, plus the app's own time. On this
    # shared 2-core machine (load averages of 15 to 20 while other jobs run)
    # every thread of the process can stall for a second at once, so: 99 % of
    # answers within the two round trips' budget, and none near the hang this
    # guards against (a client retrying a dead node, or its 5 s time-outs).
    times = sorted(a.elapsed_s for a in answers)
    assert times[int(len(times) * 0.99)] < 2 * budget_s + 0.1
    assert times[-1] < 2 * budget_s + 1.5
    victims = {d for d, _ in on}
    degraded = [a for a in answers if a.degraded]
    assert degraded
    # The log names the master that failed and its slots. On this shared
    # machine a live master (another one, or the promoted replica) sometimes
    # misses its half of the budget too: it is then rightly taken for failed
    # (logged, its breaker opened for the cool-down), but only ever for a read
    # time-out, never a refused or reset connection, which only the victim gives.
    victim_name = f"127.0.0.1:{victim.port}"
    down_logs = [r for r in caplog.records if r.getMessage().startswith("redis master failed")]
    victim_logs = [r for r in down_logs if getattr(r, "node", None) == victim_name]
    assert victim_logs and getattr(victim_logs[0], "slots", None) == victim_slots
    slow = [r for r in down_logs if r not in victim_logs]
    assert [(getattr(r, "node", None), getattr(r, "error", "")) for r in slow
            if not str(getattr(r, "error", "")).startswith("Timeout reading")] == []
    to_monotonic = time.monotonic() - time.time()
    slow_at = [r.created + to_monotonic for r in slow]

    def lateness(a: Answer) -> bool:
        """Degraded for being late, not for the failover: given up after half
        the budget (queued that long, a read past its time-out, a script past
        its deadline), or at once while the breaker of a live master that
        timed out was open (its cool-down follows a time-out logged in the
        second before: the log says so at most once a second per master)."""
        started = a.at - a.elapsed_s
        return a.elapsed_s >= budget_s / 2 or any(started - 1.1 < t <= a.at for t in slow_at)

    # Shares on the other masters are never degraded by the failover, nor is
    # any answer before the kill or after the recovery. (Late ones are
    # degraded for their lateness, as they should be: in instrumented runs
    # under load every degraded answer of a healthy share was late in one of
    # the ways above. That a stuck master's calls never hold up a healthy
    # master's lane is tested deterministically in test_lanes.py.) So: any
    # answer degraded in time, while no live master had timed out, is a
    # victim's share answered between the kill and the recovery.
    assert [a for a in degraded if a.device not in victims and not lateness(a)] == []
    assert [a for a in degraded if a.at < killed_at and not lateness(a)] == []
    assert [a for a in answers[mark:] if a.degraded and not lateness(a)] == []
    # What the failover lost: acknowledged (not degraded) decisions recorded
    # on the victim before it died that the promoted replica does not have.
    acked = [a for a in answers if not a.degraded and a.device in victims and a.at < killed_at]
    with new_master.client() as promoted:
        lost = [a for a in acked if not promoted.exists(decision_keys(a.event, a.device, a.user, None).event)]
    print(f"\nfailover (WAIT {wait}): {len(acked)} acknowledged on the victim, {len(lost)} lost, "
          f"{len(degraded)} degraded answers, failover took {promoted_at - killed_at:.2f} s")
    if wait:
        assert lost == []
    if risk_state(app).store.native.mode != "off" and risk_state(app).store.native_status()["path"] != "lua":
        # The promoted replica decides with the module: its connections found it.
        with new_master.client() as promoted:
            stats = promoted.info("commandstats")
        assert int(stats.get("cmdstat_risk.decide", {}).get("calls", 0)) > 0, stats
        assert risk_state(app).store.native_status()["masters"][f"127.0.0.1:{new_master.port}"] == "native"
