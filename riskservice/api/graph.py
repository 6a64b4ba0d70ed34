"""The latest batch graph scores (role analyst)."""

from __future__ import annotations

import redis
from flask import Blueprint, Response

from riskservice.api import params
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.errors import StorageError
from riskservice.graph_store import top
from riskservice.state import risk_state

bp = Blueprint("graph", __name__)

MAX_TOP = 1000


def top_param() -> int:
    return params.int_param(params.args("top").get("top"), "top", 20, 1, MAX_TOP)


def top_nodes(score: str) -> Response:
    n = top_param()
    try:
        return json_response(top(risk_state().store.client, score, n))
    except redis.RedisError as exc:
        raise StorageError(f"cannot read the graph scores: {exc}") from exc


@bp.get("/v1/graph/kol")
@require("analyst")
def top_kol() -> Response:
    """The nodes with the highest KOL scores, with the signals behind them."""
    return top_nodes("kol")


@bp.get("/v1/graph/anomalies")
@require("analyst")
def top_anomalies() -> Response:
    """The nodes with the highest anomaly scores, with the signals behind them."""
    return top_nodes("anomaly")
