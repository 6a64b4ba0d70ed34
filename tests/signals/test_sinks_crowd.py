"""``sink_feeder`` and a crowd's coupon (sinks.py): fans of a flash sale
sending the sale's coupon to friends who claim a lot are not a ring's
feeders; on crafted share streams."""

from __future__ import annotations

from riskservice.signals.engine import SignalEngine
from tests.signals.test_engine import MONTH, T0, outcome, published, share

# Three sharers reaching the same two heavy claimers: a ring's block (see
# test_engine's popular-claimer test), whatever the coupon.
BLOCK = ("a", "b1", "b2")
SINKS = ("p1", "p2")


def crowd(engine: SignalEngine, coupon: str, n: int = 40) -> None:
    """``n`` accounts sharing ``coupon`` within a minute: a crowd (40 in a day)."""
    for i in range(n):
        share(engine, 1000 + i, i * 1000, f"fan{i}", coupon=coupon)


def feed(engine: SignalEngine, coupon: str, t0: int, n0: int) -> None:
    for i, sharer in enumerate(BLOCK):
        share(engine, n0 + i, t0 + i * 1000, sharer, coupon=coupon, recipients=SINKS)
        outcome(engine, n0 + i, t0 + i * 1000 + 10, delivered=2, claimed=2)


def test_sharers_reaching_heavy_claimers_with_a_crowds_coupon_are_no_feeders() -> None:
    engine = SignalEngine()
    crowd(engine, "sale")
    feed(engine, "sale", 60_000, 0)
    # Only the sale's coupon reached p1 and p2: nobody fed them, no sink.
    assert [published(engine, "sink_feeder", s, 63_000) for s in BLOCK] == [None, None, None]
    # The same three again with a coupon of their own: they feed both.
    feed(engine, "own", 100_000, 10)
    assert [published(engine, "sink_feeder", s, 103_000) for s in BLOCK] == [
        f"2@{T0 + 100_000 + MONTH}", f"2@{T0 + 101_000 + MONTH}", f"2@{T0 + 102_000 + MONTH}"]


def test_the_same_stream_on_a_calm_coupon_flags_the_block() -> None:
    engine = SignalEngine()
    # 36 fans and the block's three: 39 sharers of the coupon in a day, no
    # crowd; the block feeds both sinks.
    crowd(engine, "sale", n=36)
    feed(engine, "sale", 60_000, 0)
    assert [published(engine, "sink_feeder", s, 63_000) for s in BLOCK] == [
        f"2@{T0 + 60_000 + MONTH}", f"2@{T0 + 61_000 + MONTH}", f"2@{T0 + 62_000 + MONTH}"]


def test_a_fan_that_also_reached_a_sink_with_its_own_coupon_feeds_it() -> None:
    engine = SignalEngine()
    crowd(engine, "sale")
    # b1 and b2 reach both claimers with coupons of their own, "a" with the
    # sale's coupon first and then its own: its own share counts.
    feed(engine, "sale", 60_000, 0)
    for i, sharer in enumerate(BLOCK):
        share(engine, 20 + i, 100_000 + i * 1000, sharer, coupon=f"own-{sharer}", recipients=SINKS)
        outcome(engine, 20 + i, 100_000 + i * 1000 + 10, delivered=2, claimed=2)
    assert published(engine, "sink_feeder", "a", 103_000) == f"2@{T0 + 100_000 + MONTH}"
