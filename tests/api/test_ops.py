"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from riskservice.api.hot_path import ROUTES
from riskservice.api.schemas import DecisionResponse, ErrorResponse
from tests.api.helpers import share
from tests.conftest import ISSUER


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["redis"] == "ok"


def test_metrics_count_decisions_rules_and_latency(client: FlaskClient) -> None:
    share(client)
    share(client, text="转发得现金")
    text = client.get("/metrics").data.decode()
    assert 'risk_decisions_total{decision="allow",degraded="false"} 1.0' in text
    assert 'risk_decisions_total{decision="block",degraded="false"} 1.0' in text
    assert 'risk_rule_hits_total{mode="enforced",rule="sensitive_copy"} 1.0' in text
    assert 'risk_request_seconds_count{endpoint="/v1/decisions"} 2.0' in text


def test_answers_match_the_documented_schemas(client: FlaskClient) -> None:
    DecisionResponse.model_validate(share(client, recipient_count=20, text="转发抽奖").json)
    DecisionResponse.model_validate(share(client).json)
    ErrorResponse.model_validate(client.post("/v1/decisions", json={}, headers=ISSUER).json)


def test_openapi_documents_every_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    routes = {r.rule.replace("<", "{").replace(">", "}") for r in app.url_map.iter_rules() if r.endpoint != "static"}
    assert routes | set(ROUTES) <= set(doc["paths"])
    assert all(set(doc["paths"][path]) == {"post"} for path in ROUTES)
    request_schema = doc["components"]["schemas"]["DecisionRequest"]
    assert set(request_schema["required"]) == {"event_id", "device_id", "user_id", "coupon_id"}
    # Each integer field carries the note on integer literals once.
    assert request_schema["properties"]["recipient_count"]["description"].count("A JSON integer literal") == 1
    assert "DecisionResponse" in doc["components"]["schemas"]
