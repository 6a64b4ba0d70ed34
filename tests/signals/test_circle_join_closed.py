"""A circle's joiner must be as closed as its members (circles.py,
``circle_join_closed``): a sharer naming a closed circle's recipient joins
the circle only while everyone who shared to it is a flagged ring member or
sink."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_board import MONTH, T0, Stream


def circle(join_closed: bool = True) -> Stream:
    """a, b and c name the same three accounts: a closed circle (test_blocks)."""
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), circle_join_closed=join_closed))
    for i, member in enumerate("abc"):
        s.share(i * 10, member, ("t1", "t2", "t3"), coupon=f"c{i}")
    return s


def test_a_real_user_with_friends_of_its_own_does_not_join() -> None:
    # e heard from a friend outside the circle, then names one of its
    # recipients: a real user naming a friend who happens to be in a circle.
    for join_closed, expected in ((True, None), (False, (3, T0 + 100 + MONTH))):
        s = circle(join_closed)
        s.share(50, "friend", ("e",), coupon="f0")
        s.share(100, "e", ("t1", "z"), coupon="c9")
        assert s.flag("m", "e", 110) == expected


def test_a_new_account_nobody_shared_to_joins() -> None:
    s = circle()
    s.share(100, "e", ("t1", "z"), coupon="c9")
    assert s.flag("m", "e", 110) == (3, T0 + 100 + MONTH)


def test_an_account_heard_only_from_the_ring_joins() -> None:
    # e heard only from a, a flagged member (and t2, a flagged sink): still
    # inside the ring.
    s = circle()
    s.share(50, "a", ("e",), coupon="a1")
    s.share(60, "t2", ("e",), coupon="t1")
    assert s.flag("m", "a", 70) is not None and s.flag("b", "t2", 70) is not None
    s.share(100, "e", ("t1", "z"), coupon="c9")
    assert s.flag("m", "e", 110) == (3, T0 + 100 + MONTH)
