"""``python -m riskservice signals`` as a real process following a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import redis
from flask.testing import FlaskClient

from tests.api.helpers import share
from tests.redis_server import RedisServer


def wait_for(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)  # ok-sleep: a real process must start and catch up with the stream


def test_the_consumer_process_publishes_values_and_stops_on_sigterm(
        client: FlaskClient, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": redis_server.url, "RISK_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "-m", "riskservice", "signals"], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: redis_client.exists("risk:events") and redis_client.xinfo_groups("risk:events"))
        # Four accounts on one device: device_rotation's floor.
        for i in range(4):
            assert share(client, user_id=f"acct-{i}").json["decision"] == "allow"
        wait_for(lambda: redis_client.hexists("risk:{d:dev-1}:sig", "r"))
        assert redis_client.hget("risk:{d:dev-1}:sig", "r").startswith(b"4@")  # type: ignore[union-attr]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # Its log lines are JSON, as the service's.
    stopped = [orjson.loads(line) for line in err.splitlines() if "signal consumer stopped" in line]
    assert [(line["events"], line["writes"]) for line in stopped] == [(4, 1)]
