"""Helpers for the review tests: flagged devices and analyst calls."""

from __future__ import annotations

import hashlib
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.api.helpers import share
from tests.conftest import ANALYST, ANALYST_KEY

# What the audit trail names the test analyst by (auth.Principal.key_id).
ANALYST_ID = hashlib.sha256(ANALYST_KEY.encode()).hexdigest()[:12]
BAD_COPY = "转发抽奖"  # a sensitive_copy block: 2 refusal points


def flag(client: FlaskClient, device: str, blocks: int = 2, challenges: int = 0, user: str = "user-1") -> None:
    """Refused shares on ``device``: ``blocks`` x sensitive copy, ``challenges`` x fan-out."""
    for _ in range(blocks):
        assert share(client, device_id=device, user_id=user, text=BAD_COPY).json["decision"] == "block"
    for _ in range(challenges):
        assert share(client, device_id=device, user_id=user, recipient_count=30).json["decision"] == "challenge"


def act(client: FlaskClient, device: str, action: str, reason: str = "checked by hand", **fields: Any) -> TestResponse:
    return client.post(f"/v1/review/devices/{device}/actions", json={"action": action, "reason": reason, **fields},
                       headers=ANALYST)


def queue(client: FlaskClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/review/devices", query_string=params, headers=ANALYST)
    assert resp.status_code == 200, resp.json
    return resp.json  # type: ignore[no-any-return]
