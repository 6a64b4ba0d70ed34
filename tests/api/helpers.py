"""Small helpers for API tests."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import ISSUER

_ids = itertools.count()


def share(client: FlaskClient, headers: dict[str, str] | None = None, **fields: Any) -> TestResponse:
    """POST one decision; fills the required fields the test does not care about."""
    body = {"event_id": f"ev-{next(_ids)}", "device_id": "dev-1", "user_id": "user-1", "coupon_id": "cp-1"}
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not ...}
    return client.post("/v1/decisions", json=body, headers=headers or ISSUER)


def codes(resp: TestResponse, key: str = "reasons") -> list[str]:
    return [r["code"] for r in resp.json[key]]  # type: ignore[index]
