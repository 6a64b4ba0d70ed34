"""The service's OpenAPI 3.1 document, generated from the request and response models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from riskservice.api.case_schemas import CaseActionResult, CaseDetail, CasePage
from riskservice.api.params import MAX_FILTER
from riskservice.api.performance import PerformanceReport
from riskservice.api.responses import json_response
from riskservice.api.schemas import (
    ActionResult,
    AuditPage,
    AuditVerification,
    ChallengeResponse,
    DecisionResponse,
    Dossier,
    ErrorResponse,
    GraphTop,
    Health,
    Neighbourhood,
    OutcomeResponse,
    PolicyStatus,
    Ready,
    ReviewQueue,
    RewardResponse,
)
from riskservice.decisions.lifecycle import ChallengeResult, OutcomeRequest
from riskservice.decisions.request import ID_PATTERN, MAX_ID_LENGTH, DecisionRequest
from riskservice.review.actions import ActionRequest
from riskservice.review.case_actions import CaseActionRequest
from riskservice.rewards import RewardRequest

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed JSON, a JSON key given twice (named in error.fields), or an invalid, unknown or "
                 "repeated query parameter (named in error.fields, code invalid_parameter)",
            401: "Missing or invalid API key", 403: "Key lacks the role",
            404: "Unknown decision or device", 409: "Conflicts with what is recorded",
            413: "Body larger than RISK_MAX_BODY_BYTES", 415: "Not application/json",
            422: "Invalid field (named in error.fields)", 503: "Redis unavailable; retry"}
    out = {str(s): _json("ErrorResponse", text[s]) for s in statuses}
    out["414"] = URI_TOO_LONG
    return out


# Answered by gunicorn before the app sees the request, as a small HTML page.
URI_TOO_LONG = {"description": "Request line longer than 8190 bytes (gunicorn's limit_request_line)",
                "content": {"text/html": {"schema": {"type": "string"}}}}


def operation(summary: str, role: str | None, response: str | None, errors: tuple[int, ...] = (),
              request: str | None = None, **extra: Any) -> dict[str, Any]:
    """One documented operation."""
    op: dict[str, Any] = {"summary": f"{summary} (role {role})" if role else summary}
    if role:
        op["security"] = [{"bearer": []}]
        errors = (401, 403, *errors)
    if request:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
        errors = (400, 413, 415, 422, *errors)
    if any(p.get("in") == "query" for p in extra.get("parameters", ())) or not request:
        errors = (400, *errors)  # every query parameter is validated; unknown ones are refused
    ok = _json(response, "OK") if response else {"description": "OK"}
    op["responses"] = {"200": ok, **_errors(*sorted(set(errors)))}
    op.update(extra)
    return op


MODELS: tuple[tuple[type[BaseModel], Literal["validation", "serialization"]], ...] = (
    (DecisionRequest, "validation"), (OutcomeRequest, "validation"), (ChallengeResult, "validation"),
    (DecisionResponse, "serialization"), (OutcomeResponse, "serialization"),
    (ChallengeResponse, "serialization"), (ErrorResponse, "serialization"), (Health, "serialization"),
    (Ready, "serialization"), (PolicyStatus, "serialization"), (GraphTop, "serialization"),
    (ReviewQueue, "serialization"), (Dossier, "serialization"), (Neighbourhood, "serialization"),
    (ActionRequest, "validation"), (ActionResult, "serialization"), (AuditPage, "serialization"),
    (AuditVerification, "serialization"),
    (RewardRequest, "validation"), (RewardResponse, "serialization"),
    (PerformanceReport, "serialization"),
    (CasePage, "serialization"), (CaseDetail, "serialization"), (CaseActionRequest, "validation"),
    (CaseActionResult, "serialization"),
)


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """Build the document once per process."""
    _, defs = models_json_schema(MODELS, ref_template=REF)
    describe_validation(defs["$defs"])
    rate_headers = {
        "RateLimit-Policy": {"description": "IETF RateLimit-Policy of the device-velocity window",
                             "schema": {"type": "string"}},
        "RateLimit": {"description": "Remaining shares and seconds to reset in that window",
                      "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "true when this answer replays an earlier one",
                                "schema": {"type": "string"}},
    }
    decide = operation("Decide a share", "issuer", "DecisionResponse", (409,), "DecisionRequest",
                       operationId="decide")
    decide["responses"]["200"]["headers"] = rate_headers
    # What a client does next with an answer: the stateful fuzz run follows these.
    decide["responses"]["200"]["links"] = {
        "ReportOutcome": {"operationId": "reportOutcome",
                          "requestBody": {"decision_id": "$response.body#/decision_id", "delivered": 1,
                                          "opened": 1, "claimed": 1}},
        "ReportChallenge": {"operationId": "reportChallenge",
                            "parameters": {"path.decision_id": "$response.body#/decision_id"}},
        "ReviewDevice": {"operationId": "deviceDossier", "parameters": {"query.device_id": "$request.body#/device_id"}},
        "ActOnDevice": {"operationId": "deviceAction", "parameters": {"query.device_id": "$request.body#/device_id"}},
    }
    decision_id = [{"name": "decision_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    top_param = [{"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                           "default": 20}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Share-risk service", "version": "1",
                 "description": "Allow, challenge or block before every coupon share."},
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/decisions": {"post": decide},
            "/v1/outcomes": {"post": operation("Report what became of a share", "issuer", "OutcomeResponse",
                                               (404, 409, 503), "OutcomeRequest", operationId="reportOutcome")},
            "/v1/challenges/{decision_id}": {"post": operation(
                "Report a challenge result", "issuer", "ChallengeResponse", (404, 409, 503), "ChallengeResult",
                parameters=decision_id, operationId="reportChallenge")},
            "/v1/rewards/check": {"post": operation("Check a share reward before paying it", "issuer",
                                                    "RewardResponse", (409, 503), "RewardRequest")},
            "/v1/policy": {"get": operation("The active policy and each merchant's effective rules", "admin",
                                            "PolicyStatus")},
            "/v1/graph/kol": {"get": operation("Top KOL nodes of the latest graph scores", "analyst", "GraphTop",
                                               (422,), parameters=top_param)},
            "/v1/graph/anomalies": {"get": operation("Top anomalous nodes of the latest graph scores", "analyst",
                                                     "GraphTop", (422,), parameters=top_param)},
            **review_paths(),
            "/v1/rules/performance": {"get": operation(
                "Hits, refusals and precision against analysts' labels per rule and signal over [since, until) "
                "(default: the 24 h before until, which defaults to now)", "analyst", "PerformanceReport",
                parameters=window_params())},
            **case_paths(),
            "/healthz": {"get": operation("Process alive", None, "Health")},
            "/readyz": {"get": {"summary": "Redis reachable", "responses": {
                "200": _json("Ready", "Ready, or degraded: on Redis Cluster a master is down and the others serve"),
                "503": _json("Ready", "No decision can be served: Redis unreachable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }


INTEGER_NOTE = ("A JSON integer literal: 5.0 and 5e0 are refused (422), as is true; "
                "bodies are validated strictly, without coercion.")
CROSS_FIELD = {
    "DecisionRequest": "Cross-field rules: with both recipients and recipient_count, recipient_count must equal "
                       "the number of distinct recipients (422 naming recipient_count). A key given twice in "
                       "any object is refused (400 naming the key).",
    "OutcomeRequest": "Cross-field rules: opened and claimed cannot exceed delivered (422 naming the field); "
                      "delivered cannot exceed the share's recipients (422); counts may grow with later "
                      "reports, never shrink (409).",
    "ChallengeResult": "Cross-field rule: kind must be the challenge the decision asked for (422 naming kind).",
    "ActionRequest": "Cross-field rules: label is required with action label and refused with any other; "
                     "hours is allowed only with action block (422 naming the field).",
    "CaseActionRequest": "Cross-field rule: label is required with action label and refused with any other "
                         "(422 naming label); members and members_digest exclude each other. With members (or "
                         "members_digest), the action is refused (409 naming members) when the case's members "
                         "differ from them.",
    "RewardRequest": "The same event_id with a different body is a 409.",
}
OCCURRED_AT = {
    "anyOf": [
        {"type": "string", "format": "date-time", "maxLength": 64,
         "description": "ISO 8601 / RFC 3339 with a zone: Z or +hh:mm (a time without a zone is refused)"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1e11, "description": "epoch seconds"},
        {"type": "null"},
    ],
    "default": None,
    "description": "When the share happened; informational. ISO 8601 with a zone, or epoch seconds.",
    "title": "Occurred At",
}


def describe_validation(schemas: dict[str, Any]) -> None:
    """Say in the document what the validators check that the generated schemas cannot."""
    schemas["DecisionRequest"]["properties"]["occurred_at"] = OCCURRED_AT
    ip = schemas["DecisionRequest"]["properties"]["ip"]
    ip["anyOf"][0] = {"type": "string", "maxLength": 64, "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
                      "description": "An IPv4 or IPv6 address (surrounding spaces are ignored; an "
                                     "IPv4-mapped IPv6 address is read as the IPv4 address it carries)"}
    for name, rule in CROSS_FIELD.items():
        model = schemas[name]
        model["description"] = f"{model.get('description', '')} {rule}".strip()
    for model_name in dict.fromkeys((*CROSS_FIELD, "DecisionRequest")):  # (each once: a note, not two)
        for prop in schemas[model_name]["properties"].values():
            for variant in (prop, *prop.get("anyOf", ())):
                if variant.get("type") == "integer":
                    prop["description"] = f"{prop.get('description', '')} {INTEGER_NOTE}".strip()
                    break


ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": ID_PATTERN}
FILTER_SCHEMA = {**ID_SCHEMA, "maxLength": MAX_FILTER}


INSTANT = {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,15}$"},
                     {"type": "string", "format": "date-time", "maxLength": 40}]}


def window_params() -> list[dict[str, Any]]:
    """``since`` and ``until`` of a time window, as riskservice/api/params.py validates them."""
    return [{"name": "since", "in": "query", "schema": INSTANT,
             "description": "epoch ms (up to year 9999) or ISO 8601 with zone (inclusive)"},
            {"name": "until", "in": "query", "schema": INSTANT,
             "description": "same forms (exclusive); not before since"}]


def review_paths() -> dict[str, Any]:
    """The analysts' API and console (riskservice/api/review.py, riskservice/console/)."""
    device = [{"name": "device_id", "in": "path", "required": True, "schema": ID_SCHEMA,
               "description": "An id that makes a plain path segment; any other id (with /, %, ?, #, "
                              "dot segments) goes in the query of the /v1/review/device routes"}]
    by_query = [{"name": "device_id", "in": "query", "required": True, "schema": ID_SCHEMA,
                 "description": "Any id POST /v1/decisions accepts, percent-encoded as a query value"}]
    page = [{"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
             "description": "ASCII digits only"},
            {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 1024,
                                                         "pattern": "^[A-Za-z0-9_-]*$"},
             "description": "next_cursor of the page before (opaque; anything else is a 400)"}]
    queue = [{"name": "status", "in": "query", "schema": {"enum": ["open", "blocked", "allowlisted", "labelled"],
                                                          "default": "open"}},
             {"name": "reason", "in": "query", "schema": FILTER_SCHEMA, "description": "a rule code"}, *page]
    instant = {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,15}$"},
                         {"type": "string", "format": "date-time", "maxLength": 40}]}
    audit = [{"name": n, "in": "query", "schema": sch, "description": d} for n, sch, d in (
        ("entity", FILTER_SCHEMA, "e.g. device:dev-42 or policy"), ("actor", FILTER_SCHEMA, "an analyst's key id"),
        ("since", instant, "epoch ms (up to year 9999) or ISO 8601 with zone (inclusive)"),
        ("until", instant, "same forms (exclusive); not before since"))] + page
    hops = [{"name": "hops", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1}}]
    html = {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}
    fragment = {"summary": "", "security": [{"bearer": []}], "responses": {**html, **_errors(400, 401, 403, 404)}}
    return {
        "/v1/review/devices": {"get": operation("Flagged devices, worst first (priority: refusal points or "
                                                "10 x anomaly), or resolved ones by status", "analyst",
                                                "ReviewQueue", (422,), parameters=queue)},
        "/v1/review/devices/{device_id}": {"get": operation("A device's dossier", "analyst", "Dossier", (404,),
                                                            parameters=device)},
        "/v1/review/devices/{device_id}/graph": {"get": operation(
            "A device's neighbourhood in the share graph (capped; truncated flag)", "analyst", "Neighbourhood",
            (404, 422), parameters=device + hops)},
        "/v1/review/device": {"get": operation("A device's dossier, any id", "analyst", "Dossier", (404,),
                                               parameters=by_query, operationId="deviceDossier")},
        "/v1/review/device/graph": {"get": operation(
            "A device's neighbourhood, any id", "analyst", "Neighbourhood", (404,), parameters=by_query + hops)},
        "/v1/review/device/actions": {"post": operation(
            "Block, unblock, allow-list, label or flag a device, any id (audited)", "analyst", "ActionResult",
            (400, 409), "ActionRequest", parameters=by_query,
            operationId="deviceAction")},
        "/v1/review/devices/{device_id}/actions": {"post": operation(
            "Block, unblock, allow-list, label or flag a device (audited)", "analyst", "ActionResult", (409,),
            "ActionRequest", parameters=device)},
        "/v1/audit": {"get": operation("The audit trail, newest first", "analyst", "AuditPage", (422,),
                                       parameters=audit)},
        "/v1/audit/verify": {"get": operation("Verify the audit trail's hash chain", "analyst",
                                              "AuditVerification")},
        "/console": {"get": {"summary": "The analysts' web console", "responses": html}},
        "/console/assets/{name}": {"get": {"summary": "The console's script, style sheet and icon", "parameters": [
            {"name": "name", "in": "path", "required": True,
             "schema": {"enum": ["console.js", "console.css", "favicon.svg"]}}],
            "responses": {"200": {"description": "JavaScript or CSS"}, **_errors(404)}}},
        "/console/queue": {"get": {**fragment, "summary": "The queue as an HTML fragment, 25 a page (role analyst)",
                                   "parameters": [p for p in queue if p["name"] != "limit"]}},
        "/console/devices/{device_id}": {"get": {**fragment, "summary": "A device as an HTML fragment (role analyst)",
                                                 "parameters": device + hops}},
        "/console/device": {"get": {**fragment, "summary": "A device, any id, as an HTML fragment (role analyst)",
                                    "parameters": by_query + hops}},
        "/console/performance": {"get": {**fragment, "summary": "Rule performance as an HTML fragment, a chart per "
                                                                "rule (role analyst)", "parameters": window_params()}},
    }


def case_paths() -> dict[str, Any]:
    """The case API (riskservice/api/cases.py)."""
    case = [{"name": "case_id", "in": "path", "required": True, "schema": ID_SCHEMA}]
    listing = [{"name": "status", "in": "query", "schema": {"enum": ["open", "resolved"], "default": "open"}},
               {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                                           "default": 50}, "description": "ASCII digits only"},
               {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 1024,
                                                            "pattern": "^[A-Za-z0-9_-]*$"},
                "description": "next_cursor of the page before (opaque; anything else is a 400)"}]
    html = {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}
    fragment = {"security": [{"bearer": []}], "responses": {**html, **_errors(400, 401, 403, 404)}}
    return {
        "/console/cases": {"get": {**fragment, "summary": "Cases as an HTML fragment, 25 a page (role analyst)",
                                   "parameters": [p for p in listing if p["name"] != "limit"]}},
        "/console/cases/{case_id}": {"get": {**fragment, "summary": "A case as an HTML fragment (role analyst)",
                                             "parameters": case}},
        "/v1/review/cases": {"get": operation("Cases (groups of flagged users and devices), worst first, or "
                                              "resolved ones", "analyst", "CasePage", (422, 503),
                                              parameters=listing)},
        "/v1/review/cases/{case_id}": {"get": operation(
            "A case: members, evidence and its subgraph (capped; truncated flag)", "analyst", "CaseDetail",
            (404, 503), parameters=case)},
        "/v1/review/cases/{case_id}/actions": {"post": operation(
            "Block, allow-list, label or dismiss every member of a case (one audit entry)", "analyst",
            "CaseActionResult", (404, 409, 503), "CaseActionRequest", parameters=case)},
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(document())
