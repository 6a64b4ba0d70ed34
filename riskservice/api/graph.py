"""The latest batch graph scores (role analyst)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.errors import ValidationFailed
from riskservice.graph_store import top

bp = Blueprint("graph", __name__)

MAX_TOP = 1000


def top_param() -> int:
    raw = request.args.get("top", "20")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_TOP:
        raise ValidationFailed(f"top must be a whole number from 1 to {MAX_TOP}", {"top": f"got {raw!r}"})
    return n


@bp.get("/v1/graph/kol")
@require("analyst")
def top_kol() -> Response:
    """The nodes with the highest KOL scores, with the signals behind them."""
    return json_response(top(current_app.extensions["risk"].store.client, "kol", top_param()))


@bp.get("/v1/graph/anomalies")
@require("analyst")
def top_anomalies() -> Response:
    """The nodes with the highest anomaly scores, with the signals behind them."""
    return json_response(top(current_app.extensions["risk"].store.client, "anomaly", top_param()))
