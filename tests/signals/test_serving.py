"""gunicorn's master runs the signal consumer beside the workers, starts it
again when it dies, and stops it; /readyz says how it is."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import redis
import requests

from riskservice.signals.lease import LEASE_KEY
from tests.cluster.nodes import process_alive
from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn


def wait_for(check: object, server: Gunicorn, deadline: float) -> None:
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, server.logs()
        time.sleep(0.05)  # ok-sleep: real processes (the consumer, the master) act in real time


def consumer_state(server: Gunicorn) -> dict[str, object]:
    return requests.get(f"{server.url}/readyz", timeout=5).json()["signals"]  # type: ignore[no-any-return]


def test_the_master_starts_the_consumer_restarts_it_and_stops_it(redis_server: RedisServer,
                                                                 redis_client: redis.Redis, tmp_path: Path) -> None:
    server = Gunicorn(tmp_path, workers=1, redis_url=redis_server.url, extra_env={"RISK_SIGNALS": "1"})
    server.start()
    try:
        pid = int(re.search(r"signal consumer started \(pid (\d+)\)", server.logs()).group(1))  # type: ignore[union-attr]
        again = pid
        deadline = time.monotonic() + 20
        while not (redis_client.exists("risk:events") and redis_client.xinfo_groups("risk:events")):
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.05)  # ok-sleep: the consumer process must start
        for i in range(4):  # four accounts on one device: device_rotation's floor
            body = {"event_id": f"s{i}", "device_id": "d1", "user_id": f"u{i}", "coupon_id": "c1"}
            assert requests.post(f"{server.url}/v1/decisions", json=body, headers=ISSUER, timeout=5).ok
        while not redis_client.hexists("risk:{d:d1}:sig", "r"):
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.05)  # ok-sleep: the consumer follows the stream in real time
        wait_for(lambda: consumer_state(server).get("state") == "ok", server, deadline)
        assert consumer_state(server)["pid"] == pid
        # Killed (as the out-of-memory killer would), it is started again and takes up the stream
        # once its lease has run out (30 s; the test does not wait for that, test_lease.py does).
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not process_alive(pid), server, deadline)
        redis_client.delete(LEASE_KEY)
        deadline = time.monotonic() + 30
        wait_for(lambda: "signal consumer restarted" in server.logs(), server, deadline)
        again = int(re.search(r"signal consumer restarted \(pid (\d+)\)", server.logs()).group(1))  # type: ignore[union-attr]
        assert again != pid and process_alive(again)
        wait_for(lambda: consumer_state(server).get("pid") == again and consumer_state(server)["state"] == "ok",
                 server, deadline)
        for i in range(4):
            body = {"event_id": f"t{i}", "device_id": "d2", "user_id": f"v{i}", "coupon_id": "c1"}
            assert requests.post(f"{server.url}/v1/decisions", json=body, headers=ISSUER, timeout=5).ok
        wait_for(lambda: redis_client.hexists("risk:{d:d2}:sig", "r"), server, deadline)
    finally:
        server.stop()
    deadline = time.monotonic() + 20
    while process_alive(pid) or process_alive(again):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # ok-sleep: the consumer is stopped with the master


def test_two_servers_run_one_consumer_and_the_second_takes_over(redis_server: RedisServer,
                                                                redis_client: redis.Redis, tmp_path: Path) -> None:
    first = Gunicorn(tmp_path / "a", workers=1, redis_url=redis_server.url, extra_env={"RISK_SIGNALS": "1"})
    second = Gunicorn(tmp_path / "b", workers=1, redis_url=redis_server.url, extra_env={"RISK_SIGNALS": "1"})
    first.start()
    try:
        deadline = time.monotonic() + 30
        wait_for(lambda: "signal consumer holds the lease" in first.logs(), first, deadline)
        second.start()
        # Its master started a consumer too; it stands by.
        wait_for(lambda: "signal consumer standing by" in second.logs(), second, deadline)
        assert "signal consumer holds the lease" not in second.logs()
    finally:
        first.stop()  # its consumer gives the lease up on the way out
    try:
        wait_for(lambda: "signal consumer holds the lease" in second.logs(), second, time.monotonic() + 30)
        for i in range(4):
            body = {"event_id": f"x{i}", "device_id": "d9", "user_id": f"z{i}", "coupon_id": "c1"}
            assert requests.post(f"{second.url}/v1/decisions", json=body, headers=ISSUER, timeout=5).ok
        wait_for(lambda: redis_client.hexists("risk:{d:d9}:sig", "r"), second, time.monotonic() + 30)
    finally:
        second.stop()
