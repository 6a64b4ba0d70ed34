"""gunicorn's master runs the signal consumer beside the workers, and stops it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import redis
import requests

from tests.cluster.nodes import process_alive
from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn


def test_the_master_starts_the_consumer_and_stops_it(redis_server: RedisServer, redis_client: redis.Redis,
                                                     tmp_path: Path) -> None:
    server = Gunicorn(tmp_path, workers=1, redis_url=redis_server.url, extra_env={"RISK_SIGNALS": "1"})
    server.start()
    try:
        pid = int(re.search(r"signal consumer started \(pid (\d+)\)", server.logs()).group(1))  # type: ignore[union-attr]
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
    finally:
        server.stop()
    deadline = time.monotonic() + 20
    while process_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # ok-sleep: the consumer is stopped with the master
