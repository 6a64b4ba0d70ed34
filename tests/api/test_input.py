"""Authentication and malformed input: always a 4xx naming the field, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import ADMIN, ANALYST, ISSUER

VALID = {"event_id": "e-1", "device_id": "d-1", "user_id": "u-1", "coupon_id": "c-1"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-key-at-all-xxxxxx"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer "}, 401),
        (ANALYST, 403),
        (ADMIN, 403),
        (ISSUER, 200),
    ],
)
def test_decision_auth_matrix(client: FlaskClient, headers: dict[str, str], status: int) -> None:
    resp = client.post("/v1/decisions", json=VALID, headers=headers)
    assert resp.status_code == status
    if status != 200:
        assert set(resp.json["error"]) == {"code", "message", "fields"}
        assert "Authorization" in resp.json["error"]["fields"]


def body(**changes: Any) -> dict[str, Any]:
    data = dict(VALID)
    for k, v in changes.items():
        if v is ...:
            data.pop(k)
        else:
            data[k] = v
    return data


MALFORMED = [
    (body(event_id=...), 422, "event_id"),
    (body(device_id=...), 422, "device_id"),
    (body(user_id=...), 422, "user_id"),
    (body(coupon_id=...), 422, "coupon_id"),
    (body(event_id=""), 422, "event_id"),
    (body(event_id="   "), 422, "event_id"),
    (body(event_id=12), 422, "event_id"),
    (body(device_id=None), 422, "device_id"),
    (body(device_id="x" * 129), 422, "device_id"),
    (body(device_id="a\nb"), 422, "device_id"),
    (body(user_id=["u"]), 422, "user_id"),
    (body(channel="fax"), 422, "channel"),
    (body(recipients="r1"), 422, "recipients"),
    (body(recipients=[1, 2]), 422, "recipients.0"),
    (body(recipients=[f"r{i}" for i in range(1001)]), 422, "recipients"),
    (body(recipient_count=-1), 422, "recipient_count"),
    (body(recipient_count=1.5), 422, "recipient_count"),
    (body(recipient_count=True), 422, "recipient_count"),
    (body(recipients=["a", "b"], recipient_count=3), 422, "recipient_count"),
    (body(ip="999.1.1.1"), 422, "ip"),
    (body(ip=7), 422, "ip"),
    (body(geo={"lat": 91, "lon": 0}), 422, "geo.lat"),
    (body(geo={"lat": 0, "lon": -180.5}), 422, "geo.lon"),
    (body(geo={"lat": 0}), 422, "geo.lon"),
    (body(geo={"lat": "1", "lon": 2}), 422, "geo.lat"),
    (body(geo=[1, 2]), 422, "geo"),
    (body(text="x" * 4001), 422, "text"),
    (body(text=5), 422, "text"),
    (body(occurred_at="yesterday"), 422, "occurred_at"),
    (body(occurred_at="2026-11-22T10:00:00"), 422, "occurred_at"),
    (body(occurred_at=-5), 422, "occurred_at"),
    (body(merchant_id=""), 422, "merchant_id"),
    (body(surprise=1), 422, "surprise"),
]


@pytest.mark.parametrize(("payload", "status", "field"), MALFORMED)
def test_malformed_field_is_named(client: FlaskClient, payload: dict[str, Any], status: int, field: str) -> None:
    resp = client.post("/v1/decisions", json=payload, headers=ISSUER)
    assert resp.status_code == status, resp.json
    assert resp.json["error"]["code"] == "invalid_request"
    assert field in resp.json["error"]["fields"], resp.json


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "body"),
        (b"{", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (b"null", "body"),
        (b'{"event_id": "\xff\xfe"}', "body"),
        (b'{"event_id": "\\ud800"}', "body"),
        (b"{'single': 'quotes'}", "body"),
        (b'{"a": NaN}', "body"),
    ],
)
def test_unparseable_body_is_400(client: FlaskClient, raw: bytes, field: str) -> None:
    resp = client.post("/v1/decisions", data=raw, headers={**ISSUER, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_json"
    assert field in resp.json["error"]["fields"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    resp = client.post("/v1/decisions", data="event_id=1", headers=ISSUER)
    assert resp.status_code == 415
    assert "Content-Type" in resp.json["error"]["fields"]


def test_a_charset_other_than_utf8_is_415(client: FlaskClient) -> None:
    """JSON is UTF-8 (RFC 8259): a body labelled latin-1 is refused, not read as UTF-8 (QA11 D14)."""
    body = b'{"event_id": "e", "device_id": "d", "user_id": "u", "coupon_id": "c"}'
    for label, status in (("latin-1", 415), ("UTF-8", 200), ("utf8", 200)):
        resp = client.post("/v1/decisions", data=body,
                           headers={**ISSUER, "Content-Type": f"application/json; charset={label}"})
        assert resp.status_code == status, label
        if status == 415:
            assert "Content-Type" in resp.json["error"]["fields"]


@pytest.mark.parametrize("number", [b"9" * 5000, b"1e999", b"-1e999"])
def test_a_number_out_of_range_names_its_field(client: FlaskClient, number: bytes) -> None:
    """A number no double holds is refused naming the field that holds it, not the body (QA11 D14)."""
    raw = b'{"event_id": "e", "device_id": "d", "user_id": "u", "coupon_id": "c", "recipient_count": ' + number + b"}"
    resp = client.post("/v1/decisions", data=raw, headers={**ISSUER, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.json
    assert list(resp.json["error"]["fields"]) == ["recipient_count"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    resp = client.post("/v1/decisions", data=b"{" + b" " * 70_000 + b"}",
                       headers={**ISSUER, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "payload_too_large"


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert client.get("/v1/nothing").json["error"]["code"] == "not_found"
    resp = client.get("/v1/decisions", headers=ISSUER)
    assert resp.status_code == 405 and resp.json["error"]["code"] == "method_not_allowed"
    assert resp.headers["Allow"] == "OPTIONS, POST"


def test_valid_optional_fields_are_accepted(client: FlaskClient) -> None:
    payload = body(merchant_id="m-1", channel="moments", recipients=["a", "b"], recipient_count=2,
                   ip=" 2001:db8::1 ", geo={"lat": 31.23, "lon": 121.47}, text="邀请好友同步优惠",
                   occurred_at="2026-11-22T10:00:00+08:00")
    resp = client.post("/v1/decisions", json=payload, headers=ISSUER)
    assert resp.status_code == 200, resp.json
    resp = client.post("/v1/decisions", json=body(event_id="e-2", occurred_at=1_763_800_000), headers=ISSUER)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        # The last key would win: a proxy reading the first would see another device.
        (b'{"event_id": "dup-1", "device_id": "d1", "device_id": "d2", "user_id": "u", "coupon_id": "c"}',
         "device_id"),
        (b'{"event_id": "dup-2", "device_id": "d1", "user_id": "u", "coupon_id": "c", '
         b'"geo": {"lat": 1, "lat": 2, "lon": 3}}', "lat"),
        # A colon inside a value takes the slow path; the duplicate is still found.
        (b'{"event_id": "dup-3", "device_id": "d1", "user_id": "u", "coupon_id": "c", '
         b'"occurred_at": "2026-11-22T10:00:00+08:00", "coupon_id": "c2"}', "coupon_id"),
        # Escapes spell the same key differently in the text.
        (b'{"event_id": "dup-4", "device_id": "d1", "\\u0064evice_id": "d2", "user_id": "u", "coupon_id": "c"}',
         "device_id"),
        # Inside a list, in an object the model would refuse anyway: refused first as a duplicate.
        (b'{"event_id": "dup-5", "device_id": "d1", "user_id": "u", "coupon_id": "c", '
         b'"recipients": [{"x": 1, "x": 2}]}', "x"),
    ],
)
def test_a_key_given_twice_is_refused_and_named(client: FlaskClient, raw: bytes, key: str) -> None:
    resp = client.post("/v1/decisions", data=raw, headers={**ISSUER, "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_json"
    assert resp.json["error"]["fields"] == {key: "duplicate key"}


DUPLICATED = {
    "/v1/outcomes": (ISSUER, b'{"decision_id": "x", "delivered": 1, "delivered": 2, "opened": 0, "claimed": 0}'),
    "/v1/challenges/some-decision": (ISSUER, b'{"passed": true, "passed": false, "kind": "captcha"}'),
    "/v1/rewards/check": (ISSUER, b'{"event_id": "r", "user_id": "u", "user_id": "v", "amount_cents": 5}'),
    "/v1/review/devices/d-1/actions": (ANALYST, b'{"action": "label", "action": "block", "reason": "x"}'),
    "/v1/review/device/actions?device_id=d-1": (ANALYST, b'{"action": "flag", "reason": "a", "reason": "b"}'),
}


@pytest.mark.parametrize("path", sorted(DUPLICATED))
def test_every_json_endpoint_refuses_a_duplicate_key(client: FlaskClient, path: str) -> None:
    headers, raw = DUPLICATED[path]
    resp = client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_json"
    assert len(resp.json["error"]["fields"]) == 1
    assert list(resp.json["error"]["fields"].values()) == ["duplicate key"]


def test_colons_in_values_do_not_refuse_a_body_without_duplicates(client: FlaskClient) -> None:
    raw = (b'{"event_id": "colons:1", "device_id": "d:1", "user_id": "u", "coupon_id": "c", "ip": "2001:db8::1",'
           b' "text": "a: b", "occurred_at": "2026-11-22T10:00:00+08:00", "geo": {"lat": 1, "lon": 2}}')
    resp = client.post("/v1/decisions", data=raw, headers={**ISSUER, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.json


def test_deeply_nested_body_is_a_4xx(client: FlaskClient) -> None:
    raw = b'{"event_id": "deep", "device_id": "d", "user_id": "u", "coupon_id": "c", "x": ' + \
        b"[" * 1000 + b"]" * 1000 + b"}"
    resp = client.post("/v1/decisions", data=raw, headers={**ISSUER, "Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500
