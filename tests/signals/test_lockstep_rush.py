"""lockstep on a flash sale's coupon: the sale's own meetings never count,
a group riding the coupon after its rush meets as on any coupon."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from riskservice.signals.lockstep import after_rush
from tests.signals.test_engine import MONTH, T0, published, share

HOUR = 3_600_000
MINUTE = 60_000


def sale(engine: SignalEngine, n: int, t: int, coupon: str, fans: int = 20) -> None:
    """``fans`` real users share ``coupon`` ten seconds apart: a rush (crowd 20)."""
    for i in range(fans):
        share(engine, n + i, t + i * 10_000, f"fan-{coupon}-{i}", coupon=coupon)


def test_a_group_riding_a_past_sales_coupon_meets_on_it() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    sale(engine, 0, 0, "sale")
    # Two hours after the rush (its last moment at 190 s), a group of four
    # shares the sale's coupon within seconds ...
    for i, user in enumerate("abcd"):
        share(engine, 100 + i, 2 * HOUR + i * 1000, user, coupon="sale")
    partners = engine.lockstep.partners.peek("a", T0 + 2 * HOUR + 3000)
    assert partners is not None and partners.get("d", T0 + 2 * HOUR + 3000) == (after_rush("sale"),)
    # ... and three of them meet again on another coupon a day later: as on
    # a calm coupon (test_engine.py), a, b and c have two partners met twice,
    # and d met the three core members once: flagged before its next share.
    for i, user in enumerate("abc"):
        share(engine, 200 + i, 26 * HOUR + i * 1000, user, coupon="c2")
    now = 26 * HOUR + 2000
    assert [published(engine, "lockstep", u, now) for u in "abc"] == [
        f"2@{T0 + 26 * HOUR + 1000 + MONTH}", f"2@{T0 + 26 * HOUR + 1000 + MONTH}",
        f"2@{T0 + 26 * HOUR + 2000 + MONTH}"]
    assert published(engine, "lockstep", "d", now) == f"3@{T0 + 2 * HOUR + 3000 + MONTH}"


def test_the_sales_own_fans_never_meet_on_it() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    # Two sales a day apart, twenty fans each within minutes; five fans share
    # both, in the rush and again half an hour after its last rush moment
    # (the sale's tail), together.
    for k in range(2):
        t = k * 24 * HOUR
        for i in range(20):
            user = f"fan-{i}" if i < 5 else f"fan-{k}-{i}"
            share(engine, 100 * k + i, t + i * 10_000, user, coupon=f"sale-{k}")
        for i in range(5):
            share(engine, 100 * k + 50 + i, t + 190_000 + 30 * MINUTE + i * 1000, f"fan-{i}", coupon=f"sale-{k}")
    now = 24 * HOUR + 190_000 + 30 * MINUTE + 5000
    assert [published(engine, "lockstep", f"fan-{i}", now) for i in range(5)] == [None] * 5
    assert engine.lockstep.reading("fan-0", T0 + now).value == 0
    # The meetings kept are those made before each rush, on the coupon's own
    # key, which the rush marked; none in the hour after it.
    partners = engine.lockstep.partners.peek("fan-0", T0 + now)
    assert partners is not None
    assert {c for _, coupons in partners.items(T0 + now) for c in coupons} == {"sale-0", "sale-1"}


def test_meetings_after_a_rush_stop_counting_when_the_coupon_rushes_again() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    sale(engine, 0, 0, "sale")
    # Three accounts meet on the coupon two hours after its rush, and again
    # on another coupon: two partners met twice each.
    for i, user in enumerate("abc"):
        share(engine, 100 + i, 2 * HOUR + i * 1000, user, coupon="sale")
    for i, user in enumerate("abc"):
        share(engine, 200 + i, 3 * HOUR + i * 1000, user, coupon="c2")
    now = 3 * HOUR + 2000
    assert published(engine, "lockstep", "a", now) == f"2@{T0 + 3 * HOUR + 1000 + MONTH}"
    # The coupon rushes again (a second sale of it): meetings on it since
    # the first rush stop counting. a's value falls to 0; it is published
    # again at a's next reading (the after-rush sharers re-read at once are
    # the last crowd_sharers of them, as for a day's crowd).
    for i in range(20):
        share(engine, 300 + i, 4 * HOUR + i * 10_000, f"fan2-{i}", coupon="sale")
    assert engine.lockstep.reading("a", T0 + 4 * HOUR + 200_000).value == 0
    share(engine, 400, 5 * HOUR, "a", coupon="c3")
    assert published(engine, "lockstep", "a", 5 * HOUR) is None


def test_after_a_rush_a_crowd_of_its_own_is_busy() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    sale(engine, 0, 0, "sale")
    # After the rush, a group of four rides the coupon, and twenty real users
    # share it over the next hours (ten minutes apart): a crowd of its own
    # over a day, never within an hour, so a popular coupon.
    for i, user in enumerate("abcd"):
        share(engine, 100 + i, 2 * HOUR + i * 1000, user, coupon="sale")
    for i in range(20):
        share(engine, 200 + i, 2 * HOUR + 20 * MINUTE + i * 10 * MINUTE, f"late-{i}", coupon="sale")
    for i, user in enumerate("abc"):
        share(engine, 300 + i, 8 * HOUR + i * 1000, user, coupon="c2")
    now = 8 * HOUR + 2000
    # Repeated meetings count; d's single meeting with the core does not
    # (as on a popular coupon: test_blocks.py).
    assert published(engine, "lockstep", "a", now) == f"2@{T0 + 8 * HOUR + 1000 + MONTH}"
    assert published(engine, "lockstep", "d", now) is None
