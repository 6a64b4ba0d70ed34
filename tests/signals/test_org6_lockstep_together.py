"""lockstep counts partners met on several coupons only when they were met
together: a group meets as a group, a prolific real user runs into other
prolific sharers by chance, each on coupons of its own."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_engine import MONTH, T0, published, share

HOUR = 3_600_000


def meet(engine: SignalEngine, n: int, t: int, users: str, coupon: str) -> int:
    """``users`` (one letter each) share ``coupon`` a second apart; the next share number."""
    for i, user in enumerate(users):
        share(engine, n + i, t + i * 1000, user, coupon=coupon)
    return n + len(users)


def chance_meetings(engine: SignalEngine) -> int:
    """``p`` meets x, y and z twice each, each pair on coupons of its own,
    hours apart (a prolific sharer's month); the time of the last meeting."""
    n, t = 0, 0
    for k, partner in enumerate("xyz"):
        for j in range(2):
            t = (2 * k + j) * 3 * HOUR
            n = meet(engine, n, t, "p" + partner, f"c{k}-{j}")
    return t + 1000


def test_partners_met_twice_each_on_coupons_of_their_own_do_not_count() -> None:
    engine = SignalEngine()
    now = chance_meetings(engine)
    assert engine.lockstep.reading("p", T0 + now).value == 0
    assert published(engine, "lockstep", "p", now) is None


def test_without_the_condition_they_would() -> None:
    engine = SignalEngine(replace(SignalConfig(), lockstep_together=1))
    now = chance_meetings(engine)
    # (valid until the first of the second meetings leaves the window)
    assert published(engine, "lockstep", "p", now) == f"3@{T0 + 3 * HOUR + 1000 + MONTH}"


def test_partners_met_together_on_the_same_coupons_count() -> None:
    engine = SignalEngine()
    n = meet(engine, 0, 0, "pxyz", "c1")
    n = meet(engine, n, 3 * HOUR, "pxyz", "c2")
    now = 3 * HOUR + 3000
    assert engine.lockstep.reading("p", T0 + now).value == 3
    # A partner met twice alongside the group on coupons the others also met on counts too,
    # one met twice on coupons no other partner shares does not.
    n = meet(engine, n, 6 * HOUR, "pw", "c3")
    n = meet(engine, n, 9 * HOUR, "pw", "c4")
    assert engine.lockstep.reading("p", T0 + 9 * HOUR + 1000).value == 3


def test_a_chance_sharer_is_no_core_member_for_a_newcomer() -> None:
    # p met three partners twice each by chance; a new account shares one
    # coupon in a burst with p: p is no core member, so that single meeting
    # is nothing. With the condition off, p is a core member and it counts.
    for together, value in ((2, 0), (1, 1)):
        engine = SignalEngine(replace(SignalConfig(), lockstep_together=together))
        now = chance_meetings(engine) + HOUR
        meet(engine, 100, now, "pn", "c-new")
        assert engine.lockstep.reading("n", T0 + now + 1000).value == value
