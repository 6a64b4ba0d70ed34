"""Redis down or hung: answers within the budget from the fail mode, then recovery."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from riskservice.app import create_app
from riskservice.decisions.degraded_log import DegradedLog
from riskservice.state import risk_state
from tests.api.helpers import share
from tests.cluster.nodes import poll
from tests.conftest import make_settings
from tests.redis_server import RedisServer

BUDGET_MS = 200
# Generous headroom for a loaded CI machine; the point is "no multi-second hang".
CEILING_S = 0.5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "own-redis").start()
    yield server
    if server.process is not None:
        server.resume()
    server.kill()


def make_app(server: RedisServer, tmp_path: Path, **overrides: object) -> Flask:
    return create_app(make_settings(server.url, tmp_path, redis_budget_ms=BUDGET_MS, **overrides))


def timed_share(app: Flask, **fields: object) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    resp = share(app.test_client(), **fields)
    assert resp.status_code == 200
    return resp.json, time.perf_counter() - started  # type: ignore[return-value]


def test_redis_killed_gives_degraded_allow_then_recovers(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path)
    body, _ = timed_share(app)
    assert body["degraded"] is False
    own_redis.kill()
    for _ in range(5):
        body, elapsed = timed_share(app)
        assert body["degraded"] is True and body["decision"] == "allow"
        assert elapsed < CEILING_S
    assert app.test_client().get("/readyz").status_code == 503
    own_redis.start()
    body, _ = timed_share(app)
    assert body["degraded"] is False
    assert app.test_client().get("/readyz").status_code == 200


def test_hung_redis_answers_within_budget(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path, fail_mode="challenge")
    timed_share(app)
    own_redis.pause()
    body, elapsed = timed_share(app)
    assert body["degraded"] is True
    assert (body["decision"], body["challenge"]) == ("challenge", "captcha")
    assert [r["code"] for r in body["reasons"]] == ["redis_unavailable"]
    assert elapsed < CEILING_S
    own_redis.resume()
    assert timed_share(app)[0]["degraded"] is False


def test_degraded_answers_still_apply_stateless_rules(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path, fail_mode="allow")
    own_redis.kill()
    body, _ = timed_share(app, text="转发得现金")
    assert body["degraded"] is True and body["decision"] == "block"


def test_fail_mode_block(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path, fail_mode="block")
    own_redis.kill()
    assert timed_share(app)[0]["decision"] == "block"


def test_breaker_skips_redis_during_cool_down(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path, breaker_cooldown_ms=60_000)
    own_redis.pause()
    timed_share(app)  # pays the budget once and opens the breaker
    own_redis.resume()
    # Redis is back, but the breaker has not let a probe through yet.
    assert timed_share(app)[0]["degraded"] is True
    # Readiness probes Redis itself, and closes the breaker on success.
    assert app.test_client().get("/readyz").status_code == 200
    assert timed_share(app)[0]["degraded"] is False


def test_readyz_on_a_hung_redis_answers_503_within_its_probe_time(own_redis: RedisServer, tmp_path: Path) -> None:
    # A large budget: the store's own client would wait 2.5 s; the probe has its own 0.2 s time-outs.
    app = create_app(make_settings(own_redis.url, tmp_path, redis_budget_ms=5000))
    own_redis.pause()
    started = time.perf_counter()
    ready = app.test_client().get("/readyz")
    assert time.perf_counter() - started < 0.9
    assert ready.status_code == 503
    assert (ready.json["status"], ready.json["redis"], ready.json["signals"]) == (
        "unavailable", "unreachable", {"state": "unknown"})
    own_redis.resume()
    assert app.test_client().get("/readyz").json["status"] == "ready"


@pytest.mark.parametrize("stale", ["closed", "reset"])
def test_a_restart_at_the_same_port_degrades_no_answer(own_redis: RedisServer, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture, stale: str) -> None:
    # qa14 D4 on one Redis: the connections kept idle are stale after the
    # restart; the first call on one is sent again on a fresh connection.
    app = create_app(make_settings(own_redis.url, tmp_path, redis_budget_ms=1000, breaker_cooldown_ms=60_000))
    assert timed_share(app, event_id="before")[0]["degraded"] is False
    own_redis.kill()
    own_redis.start()
    if stale == "reset":
        # A byte on each kept connection draws a reset from the new server's
        # host: the next write fails at once (a broken pipe).
        for conn in risk_state(app).store._idle:
            sock = conn._sock
            poll("a kept connection reset", lambda sock=sock: _send_fails(sock), 5)  # type: ignore[misc]
    with caplog.at_level(logging.WARNING):
        assert timed_share(app, event_id="after")[0]["degraded"] is False
    assert [r.getMessage() for r in caplog.records] == []


def _send_fails(sock: Any) -> bool:
    try:
        sock.send(b"\r\n")
    except OSError:
        return True
    return False


def test_every_degraded_answer_s_reason_is_logged_at_most_once_a_second(
        own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # qa14 D3: an answer degraded for another reason than a failed connection
    # (here the breaker's cool-down) was in no log line.
    app = make_app(own_redis, tmp_path, breaker_cooldown_ms=60_000)
    now = [100.0]
    risk_state(app).engine.degraded_log = DegradedLog(clock=lambda: now[0])
    own_redis.kill()

    def lines() -> list[tuple[str, int]]:
        return [(r.reason, r.unlogged_since) for r in caplog.records  # type: ignore[attr-defined]
                if r.getMessage() == "decision answered degraded"]

    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            assert timed_share(app)[0]["degraded"] is True
        assert [(reason.split(":")[0], n) for reason, n in lines()] == [
            ("redis script failed", 0), ("redis unavailable (circuit open)", 0)]
        now[0] += 0.99
        timed_share(app)
        assert len(lines()) == 2
        now[0] += 0.01
        timed_share(app)
    # The next line of a kind says how many answers went unlogged since its last.
    assert lines()[-1] == ("redis unavailable (circuit open)", 3)
