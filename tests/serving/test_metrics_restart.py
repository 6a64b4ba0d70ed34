"""Prometheus multiprocess metrics across worker restarts, with real gunicorn workers.

A worker killed with SIGKILL is replaced by gunicorn; the counters summed
over every worker's file must not go down (the dead worker's counts stay),
and its live gauge must be dropped (``mark_process_dead`` in ``child_exit``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psutil
import pytest
import requests

from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    redis_server = RedisServer(tmp_path_factory.mktemp("metrics-redis")).start()
    gunicorn = Gunicorn(tmp_path_factory.mktemp("metrics-gunicorn"), workers=2, redis_url=redis_server.url)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()
        redis_server.kill()


def sample(url: str, name: str) -> float:
    """The sum of every series of ``name`` in /metrics."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((f"{name}{{", f"{name} ")))


def decide(url: str, n: int, prefix: str) -> None:
    for i in range(n):
        resp = requests.post(f"{url}/v1/decisions", headers=ISSUER, timeout=10,
                             json={"event_id": f"{prefix}-{i}", "device_id": f"{prefix}-{i}", "user_id": "u",
                                   "coupon_id": "c"})
        assert resp.status_code == 200


def workers(server: Gunicorn) -> list[psutil.Process]:
    assert server.process is not None
    return psutil.Process(server.process.pid).children()


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)  # ok-sleep: waiting for gunicorn to replace a real worker


def test_counters_survive_a_killed_worker_and_its_live_gauge_goes(server: Gunicorn) -> None:
    # Enough requests on fresh connections that both workers answer some.
    decide(server.url, 40, "before")
    assert sample(server.url, "risk_decisions_total") == 40
    # Each worker sets the gauge when it has built its app: on a loaded machine
    # the second one can still be importing after the first served all 40.
    wait_for(lambda: sample(server.url, "risk_worker_processes") == 2, 30, "the second worker never booted")
    before = {p.pid for p in workers(server)}
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(after := {p.pid for p in workers(server)}) == 2 and victim not in after, 30,
             "gunicorn did not replace the killed worker")
    # The replacement counts from zero in a file of its own; the dead one's counts are kept.
    wait_for(lambda: sample(server.url, "risk_worker_processes") == 2, 30, "the new worker never served")
    assert sample(server.url, "risk_decisions_total") == 40
    decide(server.url, 20, "after")
    assert sample(server.url, "risk_decisions_total") == 60
    requests_total = sample(server.url, "risk_requests_total")
    assert requests_total >= 60
    assert sample(server.url, "risk_request_seconds_count") >= 60
    # The dead worker's live gauge file is gone; its counter files stay.
    metrics_dir = server.data_dir / "prometheus"
    files = {p.name for p in metrics_dir.iterdir()}
    assert f"gauge_livesum_{victim}.db" not in files
    assert f"counter_{victim}.db" in files
