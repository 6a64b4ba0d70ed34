"""Operations endpoints (no auth): liveness, readiness, metrics."""

from __future__ import annotations

import redis
from flask import Blueprint, Response

from riskservice.api.responses import json_response
from riskservice.limits.topology import health, is_cluster
from riskservice.signals.heartbeat import ConsumerStatus, exposition, read_status
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
    # Which path decisions take (on Redis Cluster, per master too).
    native_status = getattr(state.store, "native_status", None)
    body["decide"] = native_status() if native_status is not None else {
        "path": "lua", "setting": state.settings.redis_native, "module_version": None}
    # The real-time signals' consumer (docs/signals.md, Operations). Decisions
    # are still answered without it, on flags that only age: it never makes
    # the service unready.
    body["signals"] = _consumer_status().as_json()
    return json_response(body, 200 if redis_ok else 503)


@bp.get("/metrics")
def metrics() -> Response:
    body = risk_state().metrics.exposition() + exposition(_consumer_status())
    return Response(body, mimetype="text/plain; version=0.0.4")


def _consumer_status() -> ConsumerStatus:
    try:
        return read_status(risk_state().store.client)
    except redis.RedisError:
        return ConsumerStatus("unknown")
