"""Shared fixtures: one real Redis per session, an app over it with a manual clock."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from config.settings import ApiKey, Settings
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from riskservice.limits.native import MODULE_FILE
from riskservice.limits.store import RedisStore
from tests.redis_server import RedisServer

ISSUER_KEY = "test-issuer-key-0123456789"
ANALYST_KEY = "test-analyst-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789ab"
KEYS = (ApiKey(role="issuer", key=ISSUER_KEY), ApiKey(role="analyst", key=ANALYST_KEY),
        ApiKey(role="admin", key=ADMIN_KEY))


@pytest.fixture(autouse=True)
def close_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every RedisStore a test created (apps are many and short-lived
    here), so no socket is left for the garbage collector to warn about."""
    created: list[RedisStore] = []
    original = RedisStore.__init__

    def tracking_init(self: RedisStore, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(RedisStore, "__init__", tracking_init)
    yield
    for store in created:
        store.close()


def running(server: RedisServer) -> Iterator[RedisServer]:
    """``server`` started for a fixture, killed at its teardown."""
    yield server.start()
    server.kill()


def flushed_client(server: RedisServer) -> Iterator[redis.Redis]:
    """A client of ``server`` over an empty keyspace, for a fixture."""
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from running(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    yield from flushed_client(redis_server)


ROOT = Path(__file__).resolve().parents[1]
NATIVE_SOURCE = MODULE_FILE.with_suffix(".c")


@pytest.fixture(scope="session")
def native_module() -> Path:
    """The native decide module, built from the tree (``scripts/build-native``,
    a no-op when it is up to date). Skipped only while the tree has no
    ``riskdecide.c`` or this machine no C compiler; C that does not compile
    fails."""
    if not NATIVE_SOURCE.is_file():
        pytest.skip(f"no {NATIVE_SOURCE.relative_to(ROOT)} in this tree: the native decide cannot be built")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): the native decide cannot be built")
    built = subprocess.run([str(ROOT / "scripts" / "build-native")], cwd=ROOT, capture_output=True, text=True,
                           check=False, timeout=300)
    assert built.returncode == 0, built.stderr
    return MODULE_FILE


@pytest.fixture(scope="session")
def native_server(native_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis with the native decide loaded."""
    yield from running(RedisServer(tmp_path_factory.mktemp("redis-native"), modules=[native_module]))


@pytest.fixture
def native_client(native_server: RedisServer) -> Iterator[redis.Redis]:
    yield from flushed_client(native_server)


def make_settings(redis_url: str, tmp_path: Path, **overrides: object) -> Settings:
    # A generous Redis budget: on a loaded CI machine a healthy Redis can miss
    # 50 ms, and these tests are about rules, not about degrading.
    values: dict[str, object] = {"redis_url": redis_url, "api_keys": KEYS, "data_dir": tmp_path / "var",
                                 "breaker_cooldown_ms": 0, "redis_budget_ms": 2000,
                                 # Tests call PolicyHolder.check() themselves.
                                 "policy_poll_s": 0}
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def clock() -> ManualClock:
    # Starts at the real time: key expiries (PX) run on the real clock.
    return ManualClock(int(time.time() * 1000))


@pytest.fixture
def settings(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    return make_settings(redis_server.url, tmp_path)


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> Flask:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


ISSUER = {"Authorization": f"Bearer {ISSUER_KEY}"}
ANALYST = {"Authorization": f"Bearer {ANALYST_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
