"""The analysts' API (role analyst): review queue, dossier, neighbourhood, actions, audit trail.

All times in answers are epoch milliseconds on the decision path's clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from riskservice.api.decisions import json_body
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.decisions.lifecycle import parse
from riskservice.decisions.request import parse_json_object
from riskservice.errors import ValidationFailed
from riskservice.review import actions, audit, dossier, neighbourhood, queue
from riskservice.review.common import decode_cursor, encode_cursor, int_param, now_ms
from riskservice.review.verify import verify

bp = Blueprint("review", __name__)

MAX_PAGE = 200


def _state() -> Any:
    return current_app.extensions["risk"]


def _now() -> int:
    state = _state()
    return now_ms(state.engine.clock, state.store.client)


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", {name: f"got {value!r}"})
    return value


def _instant(name: str) -> int | None:
    """A time filter: epoch milliseconds, or ISO 8601 with a zone."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(f"{name} must be epoch milliseconds or ISO 8601 with a zone",
                               {name: f"got {raw!r}"})
    return round(parsed.timestamp() * 1000)


@bp.get("/v1/review/devices")
@require("analyst")
def review_queue() -> Response:
    """The flagged devices, worst first (``status=open``), or the ones resolved as ``status``."""
    status = _choice("status", queue.STATUSES, "open")
    reason = request.args.get("reason") or None
    limit = int_param(request.args.get("limit"), "limit", 50, 1, MAX_PAGE)
    page = queue.list_devices(_state().store.client, status=status, reason=reason, limit=limit,
                              cursor=request.args.get("cursor") or None)
    return json_response(page)


@bp.get("/v1/review/devices/<device_id>")
@require("analyst")
def device_dossier(device_id: str) -> Response:
    """Counters, recent decisions, users, scores, labels and analyst history of one device."""
    state = _state()
    return json_response(dossier.build(state.store.client, state.store, state.policy, device_id, _now()))


@bp.get("/v1/review/devices/<device_id>/graph")
@require("analyst")
def device_graph(device_id: str) -> Response:
    """The device's neighbourhood in the share graph, ``hops`` (1 to 3) deep, capped in size."""
    hops = int_param(request.args.get("hops"), "hops", 1, 1, neighbourhood.MAX_HOPS)
    client = _state().store.client
    dossier.require_known(client, device_id)
    graph, truncated, version = neighbourhood.neighbourhood(client, device_id, hops)
    return json_response(neighbourhood.to_json(graph, device_id, hops, truncated, version))


@bp.post("/v1/review/devices/<device_id>/actions")
@require("analyst")
def device_action(device_id: str) -> Response:
    """Block, unblock, allow-list, label or flag a device; audited with the caller's key id."""
    req = parse(actions.ActionRequest, parse_json_object(json_body()))
    state = _state()
    result = actions.apply(state.store.client, device_id, req, actor=g.principal.key_id,
                           now_ms=_now())
    return json_response(result)


@bp.get("/v1/audit")
@require("analyst")
def audit_trail() -> Response:
    """Audit entries, newest first, filtered by ``entity``, ``actor`` and time (``since``/``until``)."""
    limit = int_param(request.args.get("limit"), "limit", 50, 1, MAX_PAGE)
    cursor = request.args.get("cursor")
    before = decode_cursor(cursor, 1)[0] if cursor else None
    if before is not None and not isinstance(before, int):
        raise ValidationFailed("cursor is not one this API returned", {"cursor": "invalid"})
    entries, next_seq = audit.query(
        _state().store.client, entity=request.args.get("entity") or None, actor=request.args.get("actor") or None,
        since_ms=_instant("since"), until_ms=_instant("until"), limit=limit, before_seq=before)
    return json_response({"entries": entries, "next_cursor": encode_cursor(next_seq) if next_seq else None})


@bp.get("/v1/audit/verify")
@require("analyst")
def audit_verify() -> Response:
    """Recompute the hash chain; ``ok`` false names the first broken link."""
    return json_response(verify(_state().store.client))
