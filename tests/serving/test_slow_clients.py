"""Idle and slow-header connections do not starve the service as ``make run`` serves it.

The server is gunicorn with the project's own config (2 workers, as on a
2-core machine); the crowd is 200 silent connections and 50 that dribble
their headers a byte at a time. Decisions and health checks must still be
answered, each within a client time-out far above their usual latency.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn
from tests.serving.slow_clients import SlowClients

pytestmark = pytest.mark.serving

# Usual latency is a few milliseconds; a starved server answers nothing for
# 35-40 s. Anything above this is "not answered".
CLIENT_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    redis_server = RedisServer(tmp_path_factory.mktemp("slow-redis")).start()
    gunicorn = Gunicorn(tmp_path_factory.mktemp("slow-gunicorn"), workers=2, redis_url=redis_server.url)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()
        redis_server.kill()


def test_decisions_and_health_checks_are_answered_through_a_slow_crowd(server: Gunicorn) -> None:
    with SlowClients("127.0.0.1", server.port, idle=200, dribbling=50) as crowd:
        assert crowd.open_count() == (200, 50)
        answered: list[int] = []
        timed_out: list[str] = []
        with requests.Session() as kept_alive:
            for i in range(40):
                try:
                    # New connections and a kept-alive one: both must get through.
                    poster = kept_alive.post if i % 2 else requests.post
                    resp = poster(f"{server.url}/v1/decisions", headers=ISSUER, timeout=CLIENT_TIMEOUT_S,
                                  json={"event_id": f"crowd-{i}", "device_id": f"crowd-{i % 7}",
                                        "user_id": "u", "coupon_id": "c"})
                    answered.append(resp.status_code)
                    health = requests.get(f"{server.url}/healthz", timeout=CLIENT_TIMEOUT_S)
                    answered.append(health.status_code)
                except requests.Timeout as exc:
                    timed_out.append(str(exc))
        still_open = crowd.open_count()
    assert timed_out == []
    assert answered == [200] * 80
    # The crowd was really there while they were answered (kept at size by reopening).
    assert still_open == (200, 50)


def test_a_connection_that_never_finishes_its_headers_is_closed(server: Gunicorn) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
    try:
        sock.sendall(SlowClients.HEAD)
        sock.settimeout(0.5)
        deadline = time.monotonic() + 15  # the keep-alive/header time-out is 5 s
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"x")
                closed = sock.recv(4096) == b""
            except TimeoutError:
                continue  # still open: dribble another byte
            except OSError:
                closed = True
    finally:
        sock.close()
    assert closed
