"""Operations endpoints (no auth): liveness, readiness, metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from riskservice.api.responses import json_response
from riskservice.limits.topology import health, is_cluster
from riskservice.state import risk_state

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    state = risk_state()
    cluster = None
    if is_cluster(state.store.client):
        # Which master (and slot range) is down, or which slots have none.
        cluster = health(state.store.client)  # type: ignore[arg-type]
        redis_ok = cluster["ok"]
    else:
        redis_ok = state.store.ping()
    policy = state.policies.status()
    body = {
        "status": "ready" if redis_ok else "unavailable",
        "redis": "ok" if redis_ok else "unreachable",
        "policy_version": policy["version"],
        # A refused policy file: the old policy is still served, and this says why.
        "policy_error": policy["error"],
    }
    if cluster is not None:
        body["redis"] = "ok" if redis_ok else "degraded"
        body["cluster"] = cluster
    return json_response(body, 200 if redis_ok else 503)


@bp.get("/metrics")
def metrics() -> Response:
    body = risk_state().metrics.exposition()
    return Response(body, mimetype="text/plain; version=0.0.4")
