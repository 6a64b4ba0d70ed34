"""Closed circles in one share whose recipients' other sharers did not all
name several of them (circles.py, ``circle_share``): on crafted share
streams into the engine, and end to end through the API on a real Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from riskservice.limits.clock import ManualClock
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.engine import SignalEngine
from tests.api.helpers import share
from tests.redis_server import RedisServer
from tests.signals.conftest import app_with_merchants
from tests.signals.test_blocks import ring_flags
from tests.signals.test_board import MONTH, T0, Stream

TARGETS = ("t1", "t2", "t3")
# A ring's members name overlapping parts of its targets: a named four of
# them, b two, e two (one of them among d's), then d names three.
RING = (("a", ("t1", "t2", "t3", "t4")), ("b", ("t1", "t2")), ("e", ("t3", "t4")), ("d", TARGETS))
Named = tuple[tuple[str, tuple[str, ...]], ...]


def ring_stream(share_needed: float | None = None, *, before: Named = (), ring: Named = RING) -> Stream:
    s = Stream()
    if share_needed is not None:
        s.engine = SignalEngine(replace(SignalConfig(), circle_share=share_needed))
    for i, (user, named) in enumerate([*before, *ring]):
        s.share(i * 10, user, named, coupon=f"c{i}")
    return s


def test_a_circle_whose_members_name_parts_of_its_targets() -> None:
    # At d's share the recipients' other sharers are a, b (who named two or
    # more of them) and e (one: t3, but it also reached t4, which a reached),
    # and none of the three hears from outside: a circle of a, b and d (e is
    # not flagged); the share's recipients are ring sinks and members.
    s = ring_stream()
    until = T0 + 30 + MONTH
    assert ring_flags(s) == {**{f"b|{t}": f"3@{until}" for t in TARGETS},
                             **{f"m|{m}": f"3@{until}" for m in ("a", "b", "d", *TARGETS)}}
    # As before (every other sharer must have named several): no circle.
    assert ring_flags(ring_stream(1.0)) == {}


def test_an_account_named_for_the_first_time_in_such_a_circle_is_not_flagged() -> None:
    # d's share also names z, whom nobody named before (a real user in a
    # member's cover share, say): the circle stands, z is neither a ring
    # sink nor a member. (With every other sharer naming several, the
    # circle's recipients are flagged as before, z included.)
    ring = (*RING[:3], ("d", (*TARGETS, "z")))
    until = T0 + 30 + MONTH
    assert ring_flags(ring_stream(ring=ring)) == {
        **{f"b|{t}": f"3@{until}" for t in TARGETS}, **{f"m|{m}": f"3@{until}" for m in ("a", "b", "d", *TARGETS)}}
    whole = ((RING[0], ("b", ("t1", "t2", "t3")), ("d", (*TARGETS, "z"))))
    assert ring_flags(ring_stream(ring=whole)) == {
        **{f"b|{t}": f"3@{T0 + 20 + MONTH}" for t in (*TARGETS, "z")},
        **{f"m|{m}": f"3@{T0 + 20 + MONTH}" for m in ("a", "b", "d", *TARGETS, "z")}}


def test_an_account_naming_one_target_that_hears_from_outside_breaks_the_circle() -> None:
    # e hears from a friend of its own: the closure is asked of every other
    # sharer of the recipients, also of those that named just one.
    assert ring_flags(ring_stream(before=(("friend", ("e",)),))) == {}


def test_an_account_naming_one_target_and_nothing_else_of_the_ring_breaks_it() -> None:
    # Instead of e, a friend of t3 naming t3 and an account of its own: t3
    # hears from outside the ring.
    ring = (*RING[:2], ("friend", ("t3", "z")), RING[3])
    assert ring_flags(ring_stream(ring=ring)) == {}


def test_sharers_naming_several_must_be_half_of_those_naming_any() -> None:
    # Two more members named one of d's recipients each (and t4): a and b
    # are two of five.
    ring = (*RING[:3], ("f", ("t1", "t4")), ("g", ("t2", "t4")), RING[3])
    assert ring_flags(ring_stream(ring=ring)) == {}
    assert ring_flags(ring_stream(0.4, ring=ring))["m|d"] == f"3@{T0 + 50 + MONTH}"


DAY = 86_400
MERCHANTS = """
merchants:
  ringlenient: {ring_block: {threshold: 4}}
  ringwatch: {ring_block: {shadow: true}}
"""


@pytest.fixture
def app(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, clock: ManualClock) -> Flask:
    return app_with_merchants(redis_server, tmp_path, clock, MERCHANTS)


def test_a_member_of_such_a_circle_is_challenged_at_its_next_share(
        client: FlaskClient, consumer: SignalConsumer, clock: ManualClock, redis_client: redis.Redis) -> None:
    for i, (user, named) in enumerate(RING):
        clock.advance(60)
        resp = share(client, user_id=user, device_id=f"d-{user}", coupon_id=f"c{i}", recipients=list(named))
        assert resp.json["decision"] == "allow"
        consumer.poll()
    # On the board in Redis: d is a member of a ring of 3, for 30 days from its share.
    assert redis_client.hget("risk:{signals}:board", "m|d") == f"3@{clock.now_ms() + 30 * DAY * 1000}".encode()
    clock.advance(1)  # the worker checks the board once a second
    resp = share(client, user_id="d", device_id="d-d", coupon_id="c9", recipients=["friend"])
    assert resp.json["reasons"] == [{
        "code": "ring_block", "action": "challenge", "challenge": "captcha",
        "message": "this account is in a ring of 3 sharers feeding the same recipients (heavy claimers, "
                   "or a circle nobody else reaches) in 720 h, at or above 3",
        "observed": 3, "limit": 3, "window_s": 2_592_000, "retry_after_s": None}]
    # e, which named one target, is not flagged; per merchant, a higher
    # threshold and shadow mode.
    assert share(client, user_id="e", device_id="d-e", coupon_id="c9", recipients=["friend"]).json["decision"] \
        == "allow"
    resp = share(client, user_id="d", device_id="d-d", coupon_id="c9", recipients=["friend"], merchant_id="ringlenient")
    assert resp.json["decision"] == "allow"
    resp = share(client, user_id="d", device_id="d-d", coupon_id="c9", recipients=["friend"], merchant_id="ringwatch")
    assert (resp.json["decision"], [r["code"] for r in resp.json["shadow"]]) == ("allow", ["ring_block"])

