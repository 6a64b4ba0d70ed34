"""Operations endpoints (no auth): liveness, readiness, metrics.

``/readyz`` answers within about half a second whatever Redis does: every
Redis probe it makes goes on a connection of its own with short time-outs
(:func:`riskservice.limits.topology.probe_client`), never on the service's
clients, whose retries and slot-map re-reads made it take 3 to 6 s with a
master down or hung. Its code says whether this instance is worth routing
to: ``200`` while it can answer some decisions from Redis (on Redis Cluster,
while any master serves its slots: ``status`` is then ``degraded`` and
``cluster`` names the part that is down), ``503`` only when it can answer
none (the single Redis, or every master, unreachable). Every app server sees
the same cluster: taking them all out of a balancer for one dead master
would turn a partial outage into a full one.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import redis
from flask import Blueprint, Response

from riskservice.api.responses import json_response
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.slots import key_slot
from riskservice.limits.store import RedisStore
from riskservice.limits.topology import PROBE_TIMEOUT_S, probe_client, probe_health
from riskservice.signals.heartbeat import HEARTBEAT_KEY, ConsumerStatus, exposition, read_status
from riskservice.state import risk_state

bp = Blueprint("ops", __name__)

RedisState = Literal["ok", "degraded", "unreachable"]
STATUS: dict[RedisState, str] = {"ok": "ready", "degraded": "degraded", "unreachable": "unavailable"}


class Readiness(NamedTuple):
    """What the probe found: Redis as a whole, the cluster's parts, the consumer, the decide path."""

    redis: RedisState
    cluster: dict[str, Any] | None
    signals: ConsumerStatus
    decide: dict[str, object]


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    state = risk_state()
    store = state.store
    ready = _cluster_readiness(store) if isinstance(store, ClusterStore) else _single_readiness(store)
    policy = state.policies.status()
    body: dict[str, Any] = {
        "status": STATUS[ready.redis],
        "redis": ready.redis,
        "policy_version": policy["version"],
        # A refused policy file: the old policy is still served, and this says why.
        "policy_error": policy["error"],
    }
    if ready.cluster is not None:
        # Which master (and slot range) is down, or which slots have none.
        body["cluster"] = ready.cluster
    # Which path decisions take (on Redis Cluster, per master too).
    body["decide"] = ready.decide
    # The real-time signals' consumer (docs/signals.md, Operations). Decisions
    # are still answered without it, on flags that only age: it never makes
    # the service unready.
    body["signals"] = ready.signals.as_json()
    return json_response(body, 503 if ready.redis == "unreachable" else 200)


def _single_readiness(store: RedisStore) -> Readiness:
    """One Redis: it answers a ping on a probe connection, or nothing can be decided."""
    with probe_client(store.client, PROBE_TIMEOUT_S) as probe:
        answers = store.ping(probe)
        signals = _consumer_status(probe) if answers else ConsumerStatus("unknown")
        decide = store.native_status(look=answers, probe=probe)
    return Readiness("ok" if answers else "unreachable", None, signals, decide)


def _cluster_readiness(store: ClusterStore) -> Readiness:
    """Redis Cluster: every node probed at once; degraded while some master is
    down or some slots have none, unreachable only when no master serves."""
    seen = probe_health(store.client, PROBE_TIMEOUT_S, on_stale=store.refresh_soon)
    redis_state: RedisState = "ok" if seen.ok else "degraded" if seen.serving else "unreachable"
    down = [name for name in seen.served if name not in seen.serving]
    holder = seen.master_of(key_slot(HEARTBEAT_KEY))
    signals = ConsumerStatus("unknown")
    if holder is not None and holder in seen.serving:
        host, port = holder.rsplit(":", 1)
        with probe_client(store.client, PROBE_TIMEOUT_S, host, int(port)) as probe:
            signals = _consumer_status(probe)
    return Readiness(redis_state, seen.as_json(), signals, store.native_status(skip=down, timeout_s=PROBE_TIMEOUT_S))


@bp.get("/metrics")
def metrics() -> Response:
    body = risk_state().metrics.exposition() + exposition(_consumer_status(risk_state().store.client))
    return Response(body, mimetype="text/plain; version=0.0.4")


def _consumer_status(client: redis.Redis | redis.RedisCluster) -> ConsumerStatus:
    try:
        return read_status(client)
    except (redis.RedisError, OSError):
        return ConsumerStatus("unknown")
