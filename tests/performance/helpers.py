"""Traffic and labels the rule-performance tests share."""

from __future__ import annotations

from pathlib import Path

import redis
from flask.testing import FlaskClient

from riskservice.review.labels import review_key
from tests.api.helpers import share
from tests.conftest import ANALYST

POLICY = Path("config/policy.yaml").read_text(encoding="utf-8").replace(
    "fan_out: {limit: 10, action: challenge, challenge: sms}",
    "fan_out: {limit: 10, action: challenge, challenge: sms, shadow: true}")
BAD_COPY = "转发抽奖"
MANY = [f"r{i}" for i in range(12)]


def label_device(client: FlaskClient, device: str, label: str) -> None:
    resp = client.post(f"/v1/review/devices/{device}/actions", headers=ANALYST,
                       json={"action": "label", "label": label, "reason": "reviewed"})
    assert resp.status_code == 200, resp.json


def label_user(r: redis.Redis, user: str, label: str) -> None:
    """A user's label as a case-level label stores it (the same fields as a device's)."""
    r.hset(review_key("user", user), mapping={"label": label, "label_by": "case-analyst", "label_at": 1234})


def traffic(client: FlaskClient) -> None:
    """7 sensitive-copy blocks and 2 shadow fan-out hits on 11 decisions."""
    for _ in range(3):
        assert share(client, device_id="dev-f1", user_id="uf1", text=BAD_COPY).json["decision"] == "block"
    share(client, device_id="dev-l1", user_id="ul1", text=BAD_COPY)
    for _ in range(2):
        share(client, device_id="dev-u", user_id="uu", text=BAD_COPY)
    share(client, device_id="dev-n", user_id="un", text=BAD_COPY)
    resp = share(client, device_id="dev-f1", user_id="uf1", recipients=MANY).json
    assert resp["decision"] == "allow" and [r["code"] for r in resp["shadow"]] == ["fan_out"]
    share(client, device_id="dev-l1", user_id="ul1", recipients=MANY)
    share(client, device_id="dev-n", user_id="un")
    share(client, device_id="dev-n", user_id="un")
