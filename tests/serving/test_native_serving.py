"""The native decide under real gunicorn, over HTTP: decisions go to
``RISK.DECIDE`` when Redis has the module, ``/readyz`` says so, and a Redis
that comes back without it (a replica promoted without the module) costs
neither an answer nor a decision: the worker falls back to decide.lua and
counts it in ``risk_native_fallbacks_total``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from riskservice.limits.native import NATIVE_VERSION
from tests.conftest import ISSUER
from tests.limits.test_native import calls as decide_calls
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving


@pytest.fixture
def module_server(tmp_path: Path, native_module: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", modules=[native_module]).start()
    yield server
    server.kill()




def post_all(url: str, prefix: str, n: int) -> list[requests.Response]:
    session = requests.Session()
    return [session.post(f"{url}/v1/decisions", json={"event_id": f"{prefix}-{i}", "device_id": f"{prefix}-dev-{i % 3}",
                                                      "user_id": f"{prefix}-u", "coupon_id": "c"},
                         headers=ISSUER, timeout=10) for i in range(n)]


def fallbacks(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    found = re.search(r"^risk_native_fallbacks_total ([0-9.e+]+)$", text, re.M)
    assert found is not None, text
    return float(found.group(1))


def test_decisions_use_the_module_and_survive_losing_it(module_server: RedisServer, tmp_path: Path) -> None:
    # One worker, so that the counter and /readyz speak for every decision.
    service = Gunicorn(tmp_path / "data", workers=1, redis_url=module_server.url).start()
    try:
        ready = requests.get(f"{service.url}/readyz", timeout=5).json()
        assert ready["decide"] == {"path": "native", "setting": "auto", "module_version": NATIVE_VERSION}
        client = module_server.client()
        client.config_resetstat()
        answers = post_all(service.url, "a", 12)
        assert [(r.status_code, r.json()["degraded"]) for r in answers] == [(200, False)] * 12
        assert decide_calls(client) == {"risk.decide": 12}
        client.close()

        # The address now serves a Redis without the module (as after a
        # failover to a replica that lacks it): here the same port, restarted
        # without --loadmodule.
        module_server.kill()
        module_server.modules = []
        module_server.start()
        after = post_all(service.url, "b", 12)
        assert [r.status_code for r in after] == [200] * 12
        assert [r.json()["degraded"] for r in after] == [False] * 12
        client = module_server.client()
        assert decide_calls(client)["evalsha"] >= 12
        assert "risk.decide" not in decide_calls(client)
        client.close()
        # Every decision was recorded: its replay says so, with the same id.
        session = requests.Session()
        for i, first in enumerate(after):
            body = {"event_id": f"b-{i}", "device_id": f"b-dev-{i % 3}", "user_id": "b-u", "coupon_id": "c"}
            replay = session.post(f"{service.url}/v1/decisions", json=body, headers=ISSUER, timeout=10)
            assert replay.headers.get("Idempotent-Replayed") == "true"
            assert replay.json()["decision_id"] == first.json()["decision_id"]
        ready = requests.get(f"{service.url}/readyz", timeout=5).json()
        assert ready["decide"] == {"path": "lua", "setting": "auto", "module_version": None}
        assert fallbacks(service.url) == 1.0
    finally:
        service.stop()


def test_on_refuses_to_start_without_the_module(redis_server: RedisServer, redis_client: redis.Redis,
                                                tmp_path: Path) -> None:
    service = Gunicorn(tmp_path / "data", workers=1, redis_url=redis_server.url,
                       extra_env={"RISK_REDIS_NATIVE": "on"})
    with pytest.raises(RuntimeError, match="gunicorn exited") as failed:
        service.start()
    service.stop()
    assert "RISK_REDIS_NATIVE=on but Redis has no riskdecide module" in str(failed.value)
