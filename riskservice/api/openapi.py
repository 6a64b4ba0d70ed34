"""The service's OpenAPI 3.1 document, generated from the request and response models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from riskservice.api.responses import json_response
from riskservice.api.schemas import (
    ChallengeResponse,
    DecisionResponse,
    ErrorResponse,
    Health,
    GraphTop,
    OutcomeResponse,
    PolicyStatus,
    Ready,
    RewardResponse,
)
from riskservice.decisions.lifecycle import ChallengeResult, OutcomeRequest
from riskservice.decisions.request import DecisionRequest
from riskservice.rewards import RewardRequest

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed JSON", 401: "Missing or invalid API key", 403: "Key lacks the role",
            404: "Unknown decision", 409: "Conflicts with what is recorded", 413: "Body too large",
            415: "Not application/json", 422: "Invalid field (named in error.fields)",
            503: "Redis unavailable; retry"}
    return {str(s): _json("ErrorResponse", text[s]) for s in statuses}


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
    ok = _json(response, "OK") if response else {"description": "OK"}
    op["responses"] = {"200": ok, **_errors(*sorted(set(errors)))}
    op.update(extra)
    return op


MODELS: tuple[tuple[type[BaseModel], Literal["validation", "serialization"]], ...] = (
    (DecisionRequest, "validation"), (OutcomeRequest, "validation"), (ChallengeResult, "validation"),
    (DecisionResponse, "serialization"), (OutcomeResponse, "serialization"),
    (ChallengeResponse, "serialization"), (ErrorResponse, "serialization"), (Health, "serialization"),
    (Ready, "serialization"), (PolicyStatus, "serialization"), (GraphTop, "serialization"),
    (RewardRequest, "validation"), (RewardResponse, "serialization"),
)


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """Build the document once per process."""
    _, defs = models_json_schema(MODELS, ref_template=REF)
    rate_headers = {
        "RateLimit-Policy": {"description": "IETF RateLimit-Policy of the device-velocity window",
                             "schema": {"type": "string"}},
        "RateLimit": {"description": "Remaining shares and seconds to reset in that window",
                      "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "true when this answer replays an earlier one",
                                "schema": {"type": "string"}},
    }
    decide = operation("Decide a share", "issuer", "DecisionResponse", (409,), "DecisionRequest")
    decide["responses"]["200"]["headers"] = rate_headers
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
                                               (404, 409, 503), "OutcomeRequest")},
            "/v1/challenges/{decision_id}": {"post": operation(
                "Report a challenge result", "issuer", "ChallengeResponse", (404, 409, 503), "ChallengeResult",
                parameters=decision_id)},
            "/v1/rewards/check": {"post": operation("Check a share reward before paying it", "issuer",
                                                    "RewardResponse", (409, 503), "RewardRequest")},
            "/v1/policy": {"get": operation("The active policy and each merchant's effective rules", "admin",
                                            "PolicyStatus")},
            "/v1/graph/kol": {"get": operation("Top KOL nodes of the latest graph scores", "analyst", "GraphTop",
                                               (422,), parameters=top_param)},
            "/v1/graph/anomalies": {"get": operation("Top anomalous nodes of the latest graph scores", "analyst",
                                                     "GraphTop", (422,), parameters=top_param)},
            "/healthz": {"get": operation("Process alive", None, "Health")},
            "/readyz": {"get": {"summary": "Redis reachable", "responses": {
                "200": _json("Ready", "Ready"), "503": _json("Ready", "Redis unreachable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(document())
