"""The analysts' API (role analyst): review queue, dossier, neighbourhood, actions, audit trail.

All times in answers are epoch milliseconds on the decision path's clock.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from riskservice.api import params
from riskservice.api.body import json_object, validated
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.errors import InvalidParameter
from riskservice.review import actions, neighbourhood, queue
from riskservice.review.common import decode_cursor, encode_cursor
from riskservice.state import risk_state

bp = Blueprint("review", __name__)

MAX_PAGE = 200



QUEUE_PARAMS = ("status", "reason", "limit", "cursor")
AUDIT_PARAMS = ("entity", "actor", "since", "until", "limit", "cursor")


@bp.get("/v1/review/devices")
@require("analyst")
def review_queue() -> Response:
    """The flagged devices, worst first (``status=open``), or the ones resolved as ``status``."""
    q = params.args(*QUEUE_PARAMS)
    status = params.choice(q, "status", queue.STATUSES, "open")
    reason = params.text_filter(q, "reason")
    limit = params.int_param(q.get("limit"), "limit", 50, 1, MAX_PAGE)
    return json_response(risk_state().review.queue(status=status, reason=reason, limit=limit,
                                                   cursor=q.get("cursor") or None))


# Each device route exists twice: with the id in the path (for ids that make a
# plain path segment) and with it in the query, ``?device_id=``, which carries
# any id the decision path accepts: "/", "%", "?", "#", "." and "..", unicode,
# 128 characters. Percent-decoding a path loses the difference between "/"
# and "%2F" before the app sees it, and clients and proxies rewrite dot
# segments and "//"; a query value survives all of them.


@bp.get("/v1/review/devices/<device_id>")
@require("analyst")
def device_dossier(device_id: str) -> Response:
    """Counters, recent decisions, users, scores, labels and analyst history of one device."""
    params.args()
    return _dossier(params.entity_id(device_id, "device_id"))


@bp.get("/v1/review/device")
@require("analyst")
def device_dossier_by_query() -> Response:
    """The dossier of ``?device_id=`` (any id)."""
    return _dossier(params.entity_id(params.args("device_id").get("device_id"), "device_id"))


def _dossier(device_id: str) -> Response:
    return json_response(risk_state().review.dossier(device_id))


@bp.get("/v1/review/devices/<device_id>/graph")
@require("analyst")
def device_graph(device_id: str) -> Response:
    """The device's neighbourhood in the share graph, ``hops`` (1 to 3) deep, capped in size."""
    return _graph(params.entity_id(device_id, "device_id"), params.args("hops"))


@bp.get("/v1/review/device/graph")
@require("analyst")
def device_graph_by_query() -> Response:
    """The neighbourhood of ``?device_id=`` (any id)."""
    q = params.args("device_id", "hops")
    return _graph(params.entity_id(q.get("device_id"), "device_id"), q)


def _graph(device_id: str, q: dict[str, str]) -> Response:
    hops = params.int_param(q.get("hops"), "hops", 1, 1, neighbourhood.MAX_HOPS)
    return json_response(risk_state().review.graph_json(device_id, hops))


@bp.post("/v1/review/devices/<device_id>/actions")
@require("analyst")
def device_action(device_id: str) -> Response:
    """Block, unblock, allow-list, label or flag a device; audited with the caller's key id."""
    params.args()
    return _action(params.entity_id(device_id, "device_id"))


@bp.post("/v1/review/device/actions")
@require("analyst")
def device_action_by_query() -> Response:
    """An action on ``?device_id=`` (any id)."""
    return _action(params.entity_id(params.args("device_id").get("device_id"), "device_id"))


def _action(device_id: str) -> Response:
    req = validated(actions.ActionRequest, json_object())
    return json_response(risk_state().review.act(device_id, req, actor=g.principal.key_id))


@bp.get("/v1/audit")
@require("analyst")
def audit_trail() -> Response:
    """Audit entries, newest first, filtered by ``entity``, ``actor`` and time (``since``/``until``)."""
    q = params.args(*AUDIT_PARAMS)
    limit = params.int_param(q.get("limit"), "limit", 50, 1, MAX_PAGE)
    cursor = q.get("cursor")
    before = decode_cursor(cursor, 1)[0] if cursor else None
    if before is not None and (isinstance(before, bool) or not isinstance(before, int) or not 0 < before < 2**53):
        raise InvalidParameter("cursor is not one this API returned", {"cursor": "invalid"})
    since, until = params.time_range(q)
    entries, next_seq = risk_state().review.audit(
        entity=params.text_filter(q, "entity"), actor=params.text_filter(q, "actor"),
        since_ms=since, until_ms=until, limit=limit, before_seq=before)
    return json_response({"entries": entries, "next_cursor": encode_cursor(next_seq) if next_seq else None})


@bp.get("/v1/audit/verify")
@require("analyst")
def audit_verify() -> Response:
    """Recompute the hash chain and check the indexes; ``ok`` false names the first problem."""
    params.args()
    return json_response(risk_state().review.verify())
