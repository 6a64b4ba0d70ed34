"""Shares allowed while Redis was down are not lost when the service stops
before Redis is back: the next start counts them (riskservice.limits.outage)."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn


def share(url: str, event_id: str) -> dict[str, object]:
    body = {"event_id": event_id, "device_id": "spill-dev", "user_id": "u", "coupon_id": "c"}
    resp = requests.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_shares_allowed_during_an_outage_survive_a_restart_of_the_service(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis", appendonly=True).start()
    data_dir = tmp_path / "var"
    first = Gunicorn(data_dir, workers=1, redis_url=redis_server.url)
    try:
        first.start()
        redis_server.stop()
        for i in range(5):  # the fail mode allow: judged locally, kept to be counted
            answer = share(first.url, f"down-{i}")
            assert (answer["decision"], answer["degraded"]) == ("allow", True)
        first.stop()  # before Redis is back: the five go to a file
        (spilled,) = (data_dir / "outage").glob("*.jsonl")
        assert len(spilled.read_bytes().splitlines()) == 5
        assert "shares allowed meanwhile kept for the next process" in first.logs()
        redis_server.start()
        second = Gunicorn(data_dir, workers=1, redis_url=redis_server.url).start()
        try:
            # The next start took the file over and counts the five first:
            # 15 more shares fill the device's 20 in 5 minutes.
            answers = [share(second.url, f"up-{i}") for i in range(16)]
            assert [a["decision"] for a in answers] == ["allow"] * 15 + ["challenge"]
            assert not any(a["degraded"] for a in answers)
            assert list((data_dir / "outage").iterdir()) == []
        finally:
            second.stop()
    finally:
        first.stop()
        redis_server.stop()
