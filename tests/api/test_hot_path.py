"""The per-share endpoints served ahead of Flask's dispatch answer as Flask's endpoints do."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from riskservice.api.body import read_body
from riskservice.errors import InvalidJson, PayloadTooLarge, StorageError
from riskservice.state import risk_state
from tests.conftest import ANALYST, ISSUER

SHARE = {"event_id": "hp-1", "device_id": "hp-dev", "user_id": "hp-u", "coupon_id": "c"}
JSON = {**ISSUER, "Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/outcomes"])
def test_both_routes_give_flasks_error_shape(client: FlaskClient, path: str) -> None:
    wrong_type = client.post(path, data="a=1", headers=ISSUER)
    assert wrong_type.status_code == 415
    assert wrong_type.json == {"error": {"code": "unsupported_media_type", "fields": {
        "Content-Type": "must be application/json (charset utf-8, if given)"},
        "message": wrong_type.json["error"]["message"]}}
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        resp = client.open(path, method=method, headers=ISSUER)
        assert resp.status_code == 405, method
        assert resp.json["error"] == {"code": "method_not_allowed", "fields": {},
                                      "message": f"{method} is not allowed on {path}"}
        assert resp.headers["Allow"] == "OPTIONS, POST"
    options = client.options(path)
    assert options.status_code == 200 and options.data == b"" and options.headers["Allow"] == "OPTIONS, POST"
    assert client.post(path, json={}, headers={"Authorization": "Bearer nope-nope-nope"}).status_code == 401


def test_outcomes_are_recorded_through_the_hot_path(client: FlaskClient) -> None:
    decision = client.post("/v1/decisions", json=SHARE, headers=ISSUER).json
    report = {"decision_id": decision["decision_id"], "delivered": 2, "opened": 1, "claimed": 1}
    resp = client.post("/v1/outcomes", json=report, headers=ISSUER)
    assert resp.status_code == 200, resp.json
    bad = client.post("/v1/outcomes", json={**report, "claimed": 3}, headers=ISSUER)
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"claimed"}


def test_every_answer_is_counted_and_logged(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="riskservice.access"):
        client.post("/v1/decisions", json=SHARE, headers=ISSUER)
        client.post("/v1/decisions", json=SHARE, headers={"Authorization": "Bearer nope-nope-nope"})
        client.get("/v1/decisions")
    text = client.get("/metrics").data.decode()
    for status in ("200", "401", "405"):
        assert f'risk_requests_total{{endpoint="/v1/decisions",status="{status}"}} 1.0' in text
    lines = [r for r in caplog.records if r.name == "riskservice.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("POST", "/v1/decisions", 200), ("POST", "/v1/decisions", 401), ("GET", "/v1/decisions", 405)]
    assert hasattr(lines[0], "key_id") and not hasattr(lines[1], "key_id")


def test_an_unexpected_error_is_a_logged_500(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(risk_state(app).engine, "decide", broken)
    with caplog.at_level(logging.ERROR, logger="riskservice.error"):
        resp = client.post("/v1/decisions", json=SHARE, headers=ISSUER)
    assert resp.status_code == 500
    assert resp.json == {"error": {"code": "internal", "message": "internal error; it has been logged", "fields": {}}}
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_an_outcome_without_redis_is_a_503_to_retry(app: Flask, client: FlaskClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any) -> None:
        raise StorageError("redis is down")

    monkeypatch.setattr(risk_state(app).lifecycle, "outcome", unreachable)
    report = {"decision_id": "x" * 32, "delivered": 1, "opened": 1, "claimed": 1}
    resp = client.post("/v1/outcomes", json=report, headers=ISSUER)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert resp.json["error"]["code"] == "unavailable"


def environ(body: bytes, **extra: Any) -> dict[str, Any]:
    return {"wsgi.input": io.BytesIO(body), **extra}


def test_read_body_by_length_or_to_the_end() -> None:
    assert read_body(environ(b'{"a": 1}', CONTENT_LENGTH="8"), 100) == b'{"a": 1}'
    assert read_body(environ(b'{"a": 1}trailing', CONTENT_LENGTH="8"), 100) == b'{"a": 1}'
    # Chunked: gunicorn has decoded it and the stream ends with the body.
    assert read_body(environ(b"x" * 100, **{"wsgi.input_terminated": True}), 100) == b"x" * 100
    assert read_body(environ(b"ignored"), 100) == b""
    assert read_body(environ(b"", CONTENT_LENGTH="0"), 100) == b""


@pytest.mark.parametrize(("env", "error", "field"), [
    (environ(b"x" * 101, CONTENT_LENGTH="101"), PayloadTooLarge, "body"),
    (environ(b"x" * 101, **{"wsgi.input_terminated": True}), PayloadTooLarge, "body"),
    (environ(b"{}", CONTENT_LENGTH="ten"), InvalidJson, "Content-Length"),
    (environ(b"{}", CONTENT_LENGTH="10"), InvalidJson, "body"),
])
def test_read_body_refuses(env: dict[str, Any], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        read_body(env, 100)
    assert field in caught.value.fields  # type: ignore[attr-defined]


def test_a_key_refused_for_its_role_is_named_in_the_access_log(client: FlaskClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # A valid key with the wrong role (403): which key asked, on the hot path
    # (decisions) and on the Flask views (the policy) alike.
    with caplog.at_level(logging.INFO, logger="riskservice.access"):
        assert client.post("/v1/decisions", json=SHARE, headers=ANALYST).status_code == 403
        assert client.get("/v1/policy", headers=ANALYST).status_code == 403
        assert client.post("/v1/decisions", json=SHARE, headers=ISSUER).status_code == 200
    lines = [r for r in caplog.records if r.name == "riskservice.access"]
    assert [r.status for r in lines] == [403, 403, 200]  # type: ignore[attr-defined]
    ids = [r.key_id for r in lines]  # type: ignore[attr-defined]
    assert ids[0] == ids[1] != ids[2]
