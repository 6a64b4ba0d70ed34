"""Shares allowed while Redis is unreachable are judged on local windows and
counted in Redis once it answers again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from flask import Flask

from riskservice.app import create_app
from riskservice.errors import StorageError
from riskservice.limits.records import decode_device_state, decode_log
from riskservice.process import keep_reconciling
from riskservice.state import risk_state
from tests.api.helpers import codes, share
from tests.conftest import ISSUER, make_settings
from tests.redis_server import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "own-redis").start()
    yield server
    server.kill()


def make_app(server: RedisServer, tmp_path: Path, **overrides: object) -> Flask:
    return create_app(make_settings(server.url, tmp_path, redis_budget_ms=200, **overrides))


def device_log(client: redis.Redis, device: str = "dev-1") -> list[int]:
    return decode_device_state(client.get(f"risk:{{d:{device}}}:state"))[0]


def test_shares_allowed_in_an_outage_are_counted_when_redis_is_back(own_redis: RedisServer,
                                                                     tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path)
    client = app.test_client()
    assert share(client).json["degraded"] is False
    own_redis.kill()
    during = [share(client).json for _ in range(5)]
    assert [(d["decision"], d["degraded"]) for d in during] == [("allow", True)] * 5
    own_redis.start()  # empty: no persistence in this test server, so only what is written now counts
    after = share(client).json
    assert after["degraded"] is False
    r = own_redis.client()
    assert len(device_log(r)) == 6  # the five from the outage, then this one
    assert len(decode_log(r.get("risk:{u:user-1}:log"))) == 6
    events = r.xrange("risk:events")
    assert [e[1].get(b"degraded") for e in events] == [b"1"] * 5 + [None]
    # A degraded allow has a decision id the service now knows: its outcome can be reported.
    outcome = client.post("/v1/outcomes", json={"decision_id": during[0]["decision_id"], "delivered": 1,
                                                "opened": 1, "claimed": 1}, headers=ISSUER)
    assert outcome.status_code == 200, outcome.json
    assert risk_state(app).engine.outage.pending() == 0


def test_local_windows_hold_the_limits_during_an_outage(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path)
    client = app.test_client()
    own_redis.kill()
    answers = [share(client).json for _ in range(22)]
    assert all(a["degraded"] for a in answers)
    assert [a["decision"] for a in answers] == ["allow"] * 20 + ["challenge"] * 2
    assert answers[-1]["reasons"][0]["code"] == "device_velocity"
    own_redis.start()
    after = share(client).json
    assert (after["decision"], after["degraded"]) == ("challenge", False)  # the 20 are in Redis's window
    assert after["reasons"][0]["observed"] == 21


def test_a_full_outage_log_drops_and_counts_what_it_cannot_keep(own_redis: RedisServer, tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path)
    engine = risk_state(app).engine
    engine.outage.capacity = 3
    client = app.test_client()
    own_redis.kill()
    for _ in range(5):
        assert share(client).json["decision"] == "allow"
    metrics = client.get("/metrics").text
    assert "risk_outage_pending 3.0" in metrics and "risk_outage_dropped_total 2.0" in metrics
    own_redis.start()
    share(client)
    assert len(device_log(own_redis.client())) == 4  # three remembered, and the share after
    assert "risk_outage_pending 0.0" in client.get("/metrics").text


def test_fail_mode_challenge_allows_nothing_so_nothing_is_reconciled(own_redis: RedisServer,
                                                                      tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path, fail_mode="challenge")
    client = app.test_client()
    own_redis.kill()
    assert share(client).json["decision"] == "challenge"
    assert risk_state(app).engine.outage.pending() == 0
    own_redis.start()
    assert share(client).json["degraded"] is False
    assert len(device_log(own_redis.client())) == 1


def test_no_request_is_degraded_shortly_after_redis_answers_again(own_redis: RedisServer, tmp_path: Path) -> None:
    # The default cool-down: the answer's recovery is what this tests.
    app = create_app(make_settings(own_redis.url, tmp_path, redis_budget_ms=100, breaker_cooldown_ms=25))

    def burst(n: int = 8) -> list[bool]:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda i: share(app.test_client()).json["degraded"], range(n)))

    assert burst(2) == [False, False]
    own_redis.pause()
    try:
        assert all(burst())
    finally:
        own_redis.resume()
    time.sleep(0.1)  # ok-sleep: the promise is about real time after Redis answers again
    assert burst() == [False] * 8


def test_a_share_allowed_in_an_outage_places_the_device(own_redis: RedisServer, tmp_path: Path) -> None:
    """Counted when Redis is back, it is the device's last counted share: the
    next share, a thousand kilometres away seconds later, is impossible travel."""
    client = make_app(own_redis, tmp_path).test_client()
    shanghai, beijing = {"lat": 31.2304, "lon": 121.4737}, {"lat": 39.9042, "lon": 116.4074}
    own_redis.kill()
    assert share(client, device_id="dev-g", geo=shanghai).json["degraded"] is True
    own_redis.start()
    far = share(client, device_id="dev-g", geo=beijing).json
    assert (far["decision"], far["degraded"]) == ("challenge", False)
    assert [r["code"] for r in far["reasons"]] == ["impossible_travel"]
    # a share from the same place is no travel
    assert codes(share(client, device_id="dev-h", geo=shanghai)) == []


def test_a_quiet_process_counts_the_outages_shares_once_redis_answers(own_redis: RedisServer,
                                                                     tmp_path: Path) -> None:
    app = make_app(own_redis, tmp_path)
    client = app.test_client()
    own_redis.kill()
    assert [share(client).json["degraded"] for _ in range(3)] == [True] * 3
    engine = risk_state(app).engine
    with pytest.raises(StorageError):
        engine.reconcile_pending()  # (Redis still away: nothing lost, all still pending)
    assert engine.outage.pending() == 3
    own_redis.start()
    keep_reconciling(app, interval_s=0.05)  # no decision comes: the process's own loop counts them
    deadline = time.monotonic() + 10
    while engine.outage.pending() and time.monotonic() < deadline:
        time.sleep(0.01)  # ok-sleep: waiting for the background loop of a real process
    assert engine.outage.pending() == 0
    assert len(device_log(own_redis.client())) == 3
