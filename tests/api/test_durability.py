"""Nothing acknowledged is lost when Redis restarts with append-only persistence."""

from __future__ import annotations

from pathlib import Path

from riskservice.app import create_app
from riskservice.events import read_events
from tests.api.helpers import share
from tests.conftest import ISSUER, make_settings
from tests.redis_server import RedisServer


def test_acknowledged_outcomes_survive_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    try:
        client = create_app(make_settings(server.url, tmp_path)).test_client()
        acknowledged = {}
        for i in range(50):
            did = share(client, event_id=f"e{i}", device_id=f"d{i % 7}", user_id=f"u{i % 7}").json["decision_id"]
            resp = client.post("/v1/outcomes", json={"decision_id": did, "delivered": 1, "opened": 1,
                                                     "claimed": i % 2}, headers=ISSUER)
            assert resp.status_code == 200
            acknowledged[f"e{i}"] = i % 2
        server.stop()  # SIGTERM: Redis flushes its AOF
        server.start()
        with server.client() as reader:
            events = {e["event_id"]: e for e in read_events(reader)}
        assert {k: e["claimed"] for k, e in events.items()} == acknowledged
        # The decisions themselves survived too: a replay is recognised.
        again = share(client, event_id="e3", device_id="d3", user_id="u3")  # same body as before
        assert again.headers["Idempotent-Replayed"] == "true"
    finally:
        server.kill()
