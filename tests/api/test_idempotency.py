"""event_id is an idempotency key: the same answer, counted once, also under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask.testing import FlaskClient

from riskservice.limits.clock import ManualClock
from riskservice.limits.records import decode_device_state
from tests.api.helpers import share
from tests.conftest import ISSUER

BODY = {"event_id": "same", "device_id": "dev-i", "user_id": "u-i", "coupon_id": "c"}


def test_replay_returns_the_same_decision(client: FlaskClient, clock: ManualClock) -> None:
    first = client.post("/v1/decisions", json=BODY, headers=ISSUER)
    clock.advance(30)
    again = client.post("/v1/decisions", json=BODY, headers=ISSUER)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_replays_count_once(client: FlaskClient) -> None:
    for _ in range(30):
        assert client.post("/v1/decisions", json=BODY, headers=ISSUER).json["decision"] == "allow"
    # Only one of the 20 velocity slots was used.
    for i in range(19):
        assert share(client, device_id="dev-i", user_id="u-i").json["decision"] == "allow", i
    assert share(client, device_id="dev-i", user_id="u-i").json["decision"] == "challenge"


def test_a_replayed_refusal_stays_a_refusal(client: FlaskClient) -> None:
    body = {**BODY, "text": "转发抽奖"}
    assert client.post("/v1/decisions", json=body, headers=ISSUER).json["decision"] == "block"
    assert client.post("/v1/decisions", json=body, headers=ISSUER).json["decision"] == "block"


def test_reused_event_id_with_another_body_is_409(client: FlaskClient) -> None:
    client.post("/v1/decisions", json=BODY, headers=ISSUER)
    resp = client.post("/v1/decisions", json={**BODY, "recipient_count": 3}, headers=ISSUER)
    assert resp.status_code == 409
    assert "event_id" in resp.json["error"]["fields"]


def test_recipients_in_another_order_or_nulls_replay(client: FlaskClient) -> None:
    """The same share written otherwise (QA11 D23): a replay, not a 409."""
    body = {**BODY, "event_id": "order", "recipients": ["r1", "r2", "r3"]}
    first = client.post("/v1/decisions", json=body, headers=ISSUER)
    again = client.post("/v1/decisions", json={**body, "recipients": ["r3", "r1", "r2"], "text": None,
                                               "geo": None, "merchant_id": None}, headers=ISSUER)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["decision_id"] == first.json["decision_id"]
    # a number spelt otherwise (QA13 D8)
    geo = {**body, "event_id": "spelt", "geo": {"lat": 31, "lon": 121.5}}
    client.post("/v1/decisions", json=geo, headers=ISSUER)
    respelt = client.post("/v1/decisions", json={**geo, "geo": {"lat": 31.0, "lon": 121.5}}, headers=ISSUER)
    assert respelt.status_code == 200 and respelt.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/decisions", json={**body, "recipients": ["r1", "r2", "r4"]}, headers=ISSUER)
    assert other.status_code == 409


def test_concurrent_replays_get_one_decision(app: Flask) -> None:
    def post(_: int) -> dict[str, object]:
        return app.test_client().post("/v1/decisions", json=BODY, headers=ISSUER).json  # type: ignore[no-any-return]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(64)))
    assert len({a["decision_id"] for a in answers}) == 1
    log, _ = decode_device_state(app.extensions["risk"].store.client.get("risk:{d:dev-i}:state"))
    assert len(log) == 1  # one admitted share
