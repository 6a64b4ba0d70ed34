"""The analysts' case API (role analyst): groups of flagged users and devices, reviewed and acted on as one.

All times in answers are epoch milliseconds on the decision path's clock.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from riskservice.api import params
from riskservice.api.body import json_object, validated
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.review.case_actions import CaseActionRequest
from riskservice.review.cases import STATUSES, CaseReview
from riskservice.state import risk_state

bp = Blueprint("cases", __name__)

MAX_PAGE = 200


def _cases() -> CaseReview:
    return CaseReview(risk_state().review)


@bp.get("/v1/review/cases")
@require("analyst")
def list_cases() -> Response:
    """Open cases, worst first (``status=open``), or resolved ones, newest resolution first."""
    q = params.args("status", "limit", "cursor")
    status = params.choice(q, "status", STATUSES, "open")
    limit = params.int_param(q.get("limit"), "limit", 50, 1, MAX_PAGE)
    return json_response(_cases().list(status=status, limit=limit, cursor=q.get("cursor") or None))


@bp.get("/v1/review/cases/<case_id>")
@require("analyst")
def get_case(case_id: str) -> Response:
    """A case: members, evidence (the ties with their times) and its subgraph for drawing (capped)."""
    params.args()
    return json_response(_cases().get(params.entity_id(case_id, "case_id")))


@bp.post("/v1/review/cases/<case_id>/actions")
@require("analyst")
def case_action(case_id: str) -> Response:
    """Block, allow-list, label or dismiss every member of a case; one audit entry lists them."""
    params.args()
    case = params.entity_id(case_id, "case_id")
    req = validated(CaseActionRequest, json_object())
    return json_response(_cases().act(case, req, actor=g.principal.key_id))
