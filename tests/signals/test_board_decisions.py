"""Flags of other accounts as rules, end to end on a real Redis: a share
naming a sink (sink_recipient) and the fan-out waiver, through the API, with
the consumer following the stream and the worker's in-memory board."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from riskservice.limits.clock import ManualClock
from riskservice.signals.consumer import SignalConsumer
from tests.api.helpers import codes, share
from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.signals.conftest import app_with_merchants

DAY = 86_400
MERCHANTS = """
merchants:
  lenient: {sink_recipient: {threshold: 5}}
  watching: {sink_recipient: {shadow: true}}
  strict: {fan_out: {waiver: false}}
  careful: {fan_out: {waiver_shares: 2}}
  ringlenient: {ring_block: {threshold: 4}}
  ringwatch: {ring_block: {shadow: true}}
  poollenient: {device_pool: {threshold: 7}}
  poolwatch: {device_pool: {shadow: true}}
"""
GROUP = [f"member-{i}" for i in range(12)]


@pytest.fixture
def app(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, clock: ManualClock) -> Flask:
    return app_with_merchants(redis_server, tmp_path, clock, MERCHANTS)


def report(client: FlaskClient, decision_id: str, delivered: int, claimed: int) -> None:
    body = {"decision_id": decision_id, "delivered": delivered, "opened": delivered, "claimed": claimed}
    assert client.post("/v1/outcomes", json=body, headers=ISSUER).status_code == 200


def check_merchants_and_hits(client: FlaskClient, rule: str, caught: dict[str, object], *, lenient: str,
                             watching: str, unaffected: dict[str, object], enforced: int) -> None:
    """The ``caught`` share again for a merchant with a higher threshold (allowed) and one
    with the rule in shadow (allowed, shown); ``unaffected`` allowed; the rule's hits counted."""
    assert share(client, **caught, merchant_id=lenient).json["decision"] == "allow"
    resp = share(client, **caught, merchant_id=watching)
    assert (resp.json["decision"], codes(resp, "shadow")) == ("allow", [rule])
    assert share(client, **unaffected).json["decision"] == "allow"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'risk_rule_hits_total{{mode="enforced",rule="{rule}"}} {enforced}.0' in metrics
    assert f'risk_rule_hits_total{{mode="shadow",rule="{rule}"}} 1.0' in metrics


def test_a_share_naming_a_sink_is_challenged_with_the_sinks_value(client: FlaskClient, consumer: SignalConsumer,
                                                                  clock: ManualClock) -> None:
    share(client, user_id="old", device_id="d-old", recipients=["x"])  # the consumer's history begins
    consumer.poll()
    clock.advance(3 * DAY)
    # Three fresh accounts, each on its own phone and with a coupon of its
    # own, share to a hoarder and a real user; the hoarder claims.
    for i in range(3):
        resp = share(client, user_id=f"feeder-{i}", device_id=f"d-{i}", coupon_id=f"c{i}",
                     recipients=["hoarder", f"friend-{i}"])
        assert resp.json["decision"] == "allow"
        report(client, resp.json["decision_id"], 2, 1)
        consumer.poll()
    clock.advance(1)  # the worker checks the board once a second
    resp = share(client, user_id="old", device_id="d-old", recipients=["hoarder", "y"])
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    assert resp.json["reasons"] == [{
        "code": "sink_recipient", "action": "challenge", "challenge": "captcha",
        "message": "recipient hoarder receives from 3 fresh accounts and claims nearly everything (a sink) "
                   "in 720 h, at or above 3",
        "observed": 3, "limit": 3, "window_s": 2_592_000, "retry_after_s": None}]
    # Per merchant: a higher threshold, shadow mode; shares to others are not affected.
    check_merchants_and_hits(
        client, "sink_recipient", {"user_id": "old", "device_id": "d-old", "recipients": ["hoarder"]},
        lenient="lenient", watching="watching",
        unaffected={"user_id": "old", "device_id": "d-old", "recipients": ["y"]}, enforced=1)


def test_a_board_signal_and_the_graph_score_give_one_reason_the_stronger(
        client: FlaskClient, app: Flask, consumer: SignalConsumer, clock: ManualClock,
        redis_client: redis.Redis) -> None:
    share(client, user_id="old", device_id="d-old", recipients=["x"])  # the consumer's history begins
    consumer.poll()
    clock.advance(3 * DAY)
    for i in range(3):  # a hoarder, as above (sink_recipient 3 / 3 = 1.0)
        resp = share(client, user_id=f"feeder-{i}", device_id=f"d-{i}", coupon_id=f"c{i}",
                     recipients=["hoarder", f"friend-{i}"])
        report(client, resp.json["decision_id"], 2, 1)
        consumer.poll()
    clock.advance(1)
    write_back(redis_client, [{"node": "old", "kind": "user", "kol": 0.0, "anomaly": 0.9, "signals": []}])
    app.extensions["risk"].graph_versions.invalidate()
    # the anomaly 0.9 / 0.8 is stronger than the sink's 3 / 3: one reason, the graph's
    assert codes(share(client, user_id="old", device_id="d-old", recipients=["hoarder"])) == ["graph_anomaly"]
    write_back(redis_client, [{"node": "old", "kind": "user", "kol": 0.0, "anomaly": 0.8, "signals": []}])
    app.extensions["risk"].graph_versions.invalidate()
    # 0.8 / 0.8 = 1.0 ties with the sink: the graph's is kept, as decide.lua does
    assert codes(share(client, user_id="old", device_id="d-old", recipients=["hoarder"])) == ["graph_anomaly"]
    # a fourth fresh account tries to feed it (refused: it names the sink), so
    # the sink's value is 4 / 3, the stronger now
    share(client, user_id="feeder-3", device_id="d-3", coupon_id="c3", recipients=["hoarder", "friend-3"])
    consumer.poll()
    clock.advance(1)
    resp = share(client, user_id="old", device_id="d-old", recipients=["hoarder"])
    assert [(r["code"], r["observed"]) for r in resp.json["reasons"]] == [("sink_recipient", 4)]
    # without the sink among the recipients, the graph's alone
    assert codes(share(client, user_id="old", device_id="d-old", recipients=["y"])) == ["graph_anomaly"]


def test_a_fresh_account_that_fed_a_sink_is_challenged_at_its_next_share(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock) -> None:
    share(client, user_id="old", device_id="d-old", recipients=["x"])
    consumer.poll()
    clock.advance(3 * DAY)
    for i in range(4):
        resp = share(client, user_id=f"feeder-{i}", device_id=f"d-{i}", coupon_id=f"c{i}", recipients=["hoarder"])
        if resp.json["decision"] == "allow":
            report(client, resp.json["decision_id"], 1, 1)
        consumer.poll()
        clock.advance(1)
    # The fourth feeder was challenged for naming the sink; its cover chat,
    # to a real user only, is challenged too.
    resp = share(client, user_id="feeder-3", device_id="d-3", recipients=["friend"])
    assert [(r["code"], r["observed"]) for r in resp.json["reasons"]] == [("sink_recipient", 4)]
    assert "a recipient this account shared to in the last days" in resp.json["reasons"][0]["message"]


def test_a_sharer_who_passed_fan_out_challenges_with_claiming_recipients_is_waived(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock) -> None:
    share(client, user_id="admin", device_id="d-a", recipients=["x"])
    consumer.poll()
    clock.advance(DAY)
    # Its first send to the group is asked for an SMS code ...
    resp = share(client, user_id="admin", device_id="d-a", coupon_id="c0", recipients=GROUP)
    assert (resp.json["decision"], resp.json["challenge"], codes(resp)) == ("challenge", "sms", ["fan_out"])
    decision_id = resp.json["decision_id"]
    passed = client.post(f"/v1/challenges/{decision_id}", json={"passed": True, "kind": "sms"}, headers=ISSUER)
    assert passed.status_code == 200
    report(client, decision_id, 12, 3)  # ... passed, and some of the group claimed
    consumer.poll()
    clock.advance(3600)
    resp = share(client, user_id="admin", device_id="d-a", coupon_id="c9", recipients=GROUP)
    assert (resp.json["decision"], codes(resp)) == ("allow", [])
    assert [(r["code"], r["message"]) for r in resp.json["shadow"]] == [
        ("fan_out", "share to 12 recipients, above the limit of 10 "
                    "(waived: 1 earlier fan-out share claimed as real people do)")]
    # A merchant whose policy turns the waiver off still asks.
    resp = share(client, user_id="admin", device_id="d-a", coupon_id="c9", recipients=GROUP, merchant_id="strict")
    assert (resp.json["decision"], codes(resp)) == ("challenge", ["fan_out"])
    # One that wants two passed sends before waiving asks again.
    resp = share(client, user_id="admin", device_id="d-a", coupon_id="c9", recipients=GROUP, merchant_id="careful")
    assert (resp.json["decision"], codes(resp)) == ("challenge", ["fan_out"])


def test_an_account_from_a_burst_of_fresh_accounts_is_challenged_from_its_second_share_after_it(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock) -> None:
    share(client, user_id="old", device_id="d-old", recipients=["x"])
    consumer.poll()
    clock.advance(3 * DAY)
    for i in range(5):
        assert share(client, user_id=f"m-{i}", device_id=f"dm-{i}", coupon_id="live",
                     recipients=[f"t-{i}"]).json["decision"] == "allow"
        consumer.poll()
        clock.advance(30)
    # Its next share goes through (a launch's first sharer sharing again);
    # from the one after, it is judged (fresh_bursts.py, fresh_burst_next_share).
    assert share(client, user_id="m-0", device_id="dm-0", coupon_id="live",
                 recipients=["t-8"]).json["decision"] == "allow"
    consumer.poll()
    clock.advance(1)  # the worker checks the board once a second
    resp = share(client, user_id="m-0", device_id="dm-0", coupon_id="other", recipients=["t-9"])
    assert resp.json["reasons"] == [{
        "code": "fresh_burst", "action": "challenge", "challenge": "captcha",
        "message": "one of 5 fresh accounts that shared the same coupon within 15 min in 720 h, at or above 5",
        "observed": 5, "limit": 5, "window_s": 2_592_000, "retry_after_s": None}]


def test_a_ring_sink_and_a_member_on_a_new_device_are_challenged(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock) -> None:
    # Three accounts, each on its own phone, share to the same three accounts,
    # which claim everything: a ring's block (not fresh accounts: the
    # consumer's history begins with them).
    for i, member in enumerate("abc"):
        resp = share(client, user_id=member, device_id=f"d-{member}", coupon_id=f"c{i}",
                     recipients=["s1", "s2", "s3"])
        assert resp.json["decision"] == "allow"
        report(client, resp.json["decision_id"], 3, 3)
        consumer.poll()
    clock.advance(1)  # the worker checks the board once a second
    # A new account's first share, to one of the sinks: challenged.
    resp = share(client, user_id="newcomer", device_id="d-new", coupon_id="c9", recipients=["s1", "friend"])
    assert resp.json["reasons"] == [{
        "code": "ring_block", "action": "challenge", "challenge": "captcha",
        "message": "recipient s1 is fed by a ring of 3 sharers feeding the same recipients (heavy claimers, "
                   "or a circle nobody else reaches) in 720 h, at or above 3",
        "observed": 3, "limit": 3, "window_s": 2_592_000, "retry_after_s": None}]
    # A member's share to a real friend from a phone it never used (rings
    # rotate devices; the device's own signals know nothing yet): challenged.
    resp = share(client, user_id="a", device_id="d-other", coupon_id="c9", recipients=["friend"])
    assert [(r["code"], r["message"]) for r in resp.json["reasons"]] == [(
        "ring_block", "this account is in a ring of 3 sharers feeding the same recipients (heavy claimers, "
                      "or a circle nobody else reaches) in 720 h, at or above 3")]
    # Per merchant: a higher threshold, shadow mode; others are not affected.
    check_merchants_and_hits(
        client, "ring_block", {"user_id": "a", "device_id": "d-other", "coupon_id": "c9", "recipients": ["friend"]},
        lenient="ringlenient", watching="ringwatch",
        unaffected={"user_id": "other", "device_id": "d-x", "coupon_id": "c9", "recipients": ["friend"]}, enforced=2)


def test_a_device_and_an_account_of_a_pool_of_shared_phones_are_challenged(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock) -> None:
    # Six accounts rotating over three phones, two or three accounts each
    # (each phone under device_rotation's 5): the pool of p3 at f's share.
    for user, device in [("a", "p1"), ("b", "p1"), ("b", "p2"), ("c", "p2"), ("c", "p3"), ("d", "p3"),
                         ("d", "p1"), ("e", "p2"), ("f", "p3")]:
        clock.advance(60)
        assert share(client, user_id=user, device_id=device, recipients=["friend"]).json["decision"] == "allow"
        consumer.poll()
    clock.advance(1)  # the worker checks the board once a second
    # A new account's first share from a phone of the pool: challenged.
    resp = share(client, user_id="newcomer", device_id="p2", recipients=["friend"])
    assert resp.json["reasons"] == [{
        "code": "device_pool", "action": "challenge", "challenge": "captcha",
        "message": "this device is in a pool of 6 accounts rotating over shared devices in 720 h, at or above 6",
        "observed": 6, "limit": 6, "window_s": 2_592_000, "retry_after_s": None}]
    # An account of the pool on a phone it never used: challenged.
    resp = share(client, user_id="a", device_id="p-new", recipients=["friend"])
    assert [(r["code"], r["message"]) for r in resp.json["reasons"]] == [(
        "device_pool", "this account is in a pool of 6 accounts rotating over shared devices in 720 h, "
                       "at or above 6")]
    # Per merchant: a higher threshold, shadow mode; others are not affected.
    check_merchants_and_hits(client, "device_pool", {"user_id": "a", "device_id": "p-new", "recipients": ["friend"]},
                             lenient="poollenient", watching="poolwatch",
                             unaffected={"user_id": "other", "device_id": "d-x", "recipients": ["friend"]}, enforced=2)
