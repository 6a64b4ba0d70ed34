"""The service's OpenAPI 3.1 document, generated from the request and response models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, Response
from pydantic.json_schema import models_json_schema

from riskservice.api.responses import json_response
from riskservice.api.schemas import DecisionResponse, ErrorResponse, Health, Ready
from riskservice.decisions.request import DecisionRequest

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed JSON", 401: "Missing or invalid API key", 403: "Key lacks the role",
            409: "event_id reused with a different body", 413: "Body too large",
            415: "Not application/json", 422: "Invalid field (named in error.fields)"}
    return {str(s): _json("ErrorResponse", text[s]) for s in statuses}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """Build the document once per process."""
    _, defs = models_json_schema(
        [(m, "validation" if m is DecisionRequest else "serialization")
         for m in (DecisionRequest, DecisionResponse, ErrorResponse, Health, Ready)],
        ref_template=REF,
    )
    rate_headers = {
        "RateLimit-Policy": {"description": "IETF RateLimit-Policy of the device-velocity window",
                             "schema": {"type": "string"}},
        "RateLimit": {"description": "Remaining shares and seconds to reset in that window",
                      "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "true when this answer replays an earlier one",
                                "schema": {"type": "string"}},
    }
    decision_ok = _json("DecisionResponse", "The decision")
    decision_ok["headers"] = rate_headers
    return {
        "openapi": "3.1.0",
        "info": {"title": "Share-risk service", "version": "1",
                 "description": "Allow, challenge or block before every coupon share."},
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/decisions": {"post": {
                "summary": "Decide a share (role issuer)",
                "security": [{"bearer": []}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("DecisionRequest")}}},
                "responses": {"200": decision_ok, **_errors(400, 401, 403, 409, 413, 415, 422)},
            }},
            "/healthz": {"get": {"summary": "Process alive", "responses": {"200": _json("Health", "Alive")}}},
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
