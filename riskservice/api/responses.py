"""JSON responses through orjson (faster than Flask's encoder on the hot path),
and the bodies of the answers every endpoint may give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response

from riskservice.errors import Unavailable

# An unexpected error: the details go to the log, never to the client.
INTERNAL_ERROR = {"error": {"code": "internal", "message": "internal error; it has been logged", "fields": {}}}


def unavailable() -> Unavailable:
    """Redis is down or slow for a call that cannot be answered without it."""
    return Unavailable("risk state is unavailable; retry shortly")


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json")
