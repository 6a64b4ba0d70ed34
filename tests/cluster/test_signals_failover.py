"""The signal consumer as it runs beside the service on a real Redis Cluster:
it survives a master dying and resumes once a replica serves the slots, and
gunicorn's master starts it on a cluster as on one Redis."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests
from flask.testing import FlaskClient

from riskservice.app import create_app
from riskservice.limits.keys import device_tag, signals_key, user_tag
from riskservice.limits.topology import connect_cluster
from riskservice.signals.consumer import SignalConsumer
from riskservice.state import risk_state
from tests.cluster.nodes import poll, process_alive
from tests.cluster.test_failover import ids_on
from tests.cluster_server import RedisClusterServer
from tests.conftest import ISSUER, make_settings
from tests.serving.gunicorn_server import Gunicorn


def share(client: FlaskClient, event: str, device: str, user: str, coupon: str) -> dict[str, Any]:
    body = {"event_id": event, "device_id": device, "user_id": user, "coupon_id": coupon}
    resp = client.post("/v1/decisions", json=body, headers=ISSUER)
    assert resp.status_code == 200, resp.get_json()
    answer: dict[str, Any] = resp.get_json()
    assert not answer["degraded"], answer
    return answer


def value(cluster: redis.RedisCluster, device: str, field: str) -> str | None:
    raw = cluster.hget(signals_key(device), field)
    return raw.decode().split("@")[0] if raw else None  # type: ignore[union-attr]


def test_the_consumer_survives_a_master_dying_and_resumes_after_failover(
        redis_cluster_with_replicas: RedisClusterServer, tmp_path: Path) -> None:
    cluster = redis_cluster_with_replicas
    masters = [n for n in cluster.nodes if n.role == "master"]
    victim = masters[1]  # (not the node the clients are seeded from)
    app = create_app(make_settings(cluster.url, tmp_path, redis_cluster=True, redis_budget_ms=400,
                                   breaker_cooldown_ms=25))
    client = app.test_client()
    reader = cluster.client()
    on, off = ids_on(victim, "dv", device_tag, 1, True)[0], ids_on(victim, "dh", device_tag, 1, False)[0]
    # device_rotation (accounts seen on a device, published from 4) is the signal
    # watched: it fires on shares seconds apart, as this test makes them
    users = ids_on(victim, "u", user_tag, 10, False)
    consumer = SignalConsumer(connect_cluster(cluster.url, 1000), discover_s=0.05)
    consumer.start()
    thread = threading.Thread(target=consumer.run, kwargs={"block_ms": 20})
    thread.start()
    try:
        for i in range(4):
            share(client, f"before-on-{i}", on, users[i], "c-on")
            share(client, f"before-off-{i}", off, users[4 + i], "c-off")
        poll("the values before the kill", lambda: value(reader, on, "r") == "4" and value(reader, off, "r") == "4",
             20)
        cluster.kill(victim)
        # The other masters' shards are still followed while the victim is down.
        share(client, "while-down", off, users[8], "c-off")
        poll("a value written while a master is down", lambda: value(reader, off, "r") == "5", 20)
        assert thread.is_alive()
        cluster.wait_for_failover(victim)
        poll("the service ready again", lambda: client.get("/readyz").get_json()["status"] == "ready", 20)
        # The service's own client finds the promoted master on its first failed call (answered degraded).
        warm = iter(range(1000))
        poll("an answer from the promoted master", lambda: not client.post("/v1/decisions", json={
            "event_id": f"warm-{next(warm)}", "device_id": on, "user_id": "warm", "coupon_id": "c-warm"},
            headers=ISSUER).get_json()["degraded"], 20)
        # The promoted replica's shards are followed again.
        share(client, "after", on, users[9], "c-after")
        # (the warm-up's account tried too: 4 before, "warm", and this one)
        poll("a value from the promoted master's shard", lambda: value(reader, on, "r") == "6", 20)
        assert thread.is_alive()
    finally:
        consumer.stop()
        thread.join(10)
        risk_state(app).store.close()
        reader.close()
    assert not thread.is_alive()




def test_gunicorns_master_starts_the_consumer_on_a_cluster(redis_cluster: RedisClusterServer,
                                                           redis_cluster_client: redis.RedisCluster,
                                                           tmp_path: Path) -> None:
    server = Gunicorn(tmp_path, workers=1, redis_url=redis_cluster.url,
                      extra_env={"RISK_SIGNALS": "1", "RISK_REDIS_CLUSTER": "1"})
    server.start()
    try:
        pid = int(re.search(r"signal consumer started \(pid (\d+)\)", server.logs()).group(1))  # type: ignore[union-attr]
        for i in range(4):  # four accounts on one device: device_rotation publishes from 4
            body = {"event_id": f"g{i}", "device_id": "gd1", "user_id": f"gu{i}", "coupon_id": "c1"}
            assert requests.post(f"{server.url}/v1/decisions", json=body, headers=ISSUER, timeout=5).ok
        # (it may still be rebuilding when the shares come: then it reads them in the rebuild)
        poll("the consumer to publish", lambda: value(redis_cluster_client, "gd1", "r") == "4", 30)
    finally:
        server.stop()
    deadline = time.monotonic() + 20
    while process_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # ok-sleep: the consumer is stopped with the master
