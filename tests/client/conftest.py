"""The client against the real service: gunicorn over the session's real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from riskclient import RiskClient

from tests.client.proxy import Proxy
from tests.conftest import ISSUER_KEY
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

# Deadline of the tests that are about answers, not about deadlines: a loaded
# 2-core machine can miss 100 ms on a healthy service.
RELAXED_S = 5.0


@pytest.fixture(scope="module")
def service(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """One gunicorn (2 workers) shared by a module's tests; none of them stops it."""
    gunicorn = Gunicorn(tmp_path_factory.mktemp("client-gunicorn"), workers=2, redis_url=redis_server.url)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()


@pytest.fixture
def own_service(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """A gunicorn (1 worker) of the test's own, which the test may stop or pause."""
    gunicorn = Gunicorn(tmp_path_factory.mktemp("client-own-gunicorn"), workers=1, redis_url=redis_server.url)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()


@pytest.fixture
def risk(service: Gunicorn) -> Iterator[RiskClient]:
    with RiskClient(service.url, ISSUER_KEY, timeout=RELAXED_S) as client:
        yield client


@pytest.fixture
def proxy(service: Gunicorn) -> Iterator[Callable[[list[str]], Proxy]]:
    """Start proxies in front of ``service`` with a plan; all are stopped in teardown."""
    started: list[Proxy] = []

    def start(plan: list[str]) -> Proxy:
        started.append(Proxy(service.port, plan).start())
        return started[-1]

    try:
        yield start
    finally:
        for each in started:
            each.stop()


def unique(prefix: str) -> str:
    """An id no other test uses (the Redis is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
