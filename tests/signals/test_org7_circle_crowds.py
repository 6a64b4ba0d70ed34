"""A flash sale's fans are no closed circle's sharers (circles.py,
``circle_no_crowds``): a sharer that named a share's recipients only with a
crowd's coupons does not make a circle, as it does not make a sink for
``sink_feeder`` (sinks.py); it still is somebody outside that named them.

The shape was traced on a simulated world (hard profile, 10 000 users): a
group admin shared a coupon to the ten members of its group; two fans of a
flash sale had sent the sale's coupon to two or three of the members each
the day before, and none of the three heard from anybody; 26 real shares
were refused by ``ring_block`` for the rest of the month.
"""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_blocks import ring_flags
from tests.signals.test_board import T0, Stream

GROUP = tuple(f"member{i}" for i in range(10))


def stream(no_crowds: bool = True) -> Stream:
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), circle_no_crowds=no_crowds))
    return s


def sale(s: Stream, t: int, crowd: int = 40) -> None:
    """``crowd`` fans share the sale's coupon within minutes, two of them
    (fan-a, fan-b) to members of the group, the others to friends of theirs."""
    s.share(t, "fan-a", ("member0", "member1", "friend-a"), coupon="sale")
    s.share(t + 10, "fan-b", ("member1", "member2", "friend-b"), coupon="sale")
    for i in range(crowd - 2):
        s.share(t + 20 + i * 10, f"fan{i}", (f"friend{i}",), coupon="sale")


def test_fans_that_named_the_group_with_a_sales_coupon_make_no_circle_with_its_admin() -> None:
    for no_crowds, flagged in ((True, False), (False, True)):
        s = stream(no_crowds)
        sale(s, 0)
        s.share(100_000, "admin", GROUP, coupon="weekly")
        assert (s.flag("m", "admin", 100_010) is not None) is flagged
        assert (s.flag("b", "member1", 100_010) is not None) is flagged


def test_fans_of_a_coupon_that_is_no_crowd_still_make_one() -> None:
    # The same shares when the coupon stays under `crowd_sharers` sharers in
    # the day: the two "fans" named the members with a coupon of their own,
    # as a ring's members name its targets, and the circle is found.
    s = stream()
    sale(s, 0, crowd=10)
    s.share(100_000, "admin", GROUP, coupon="weekly")
    assert s.flag("m", "admin", 100_010) == (3, T0 + 100_000 + SignalConfig().window_ms)
    assert s.flag("m", "fan-a", 100_010) is not None


def test_a_ring_member_that_also_pushed_a_sale_is_still_in_the_circle() -> None:
    # Ring members a and b name the targets with coupons of their own, and
    # with the sale's coupon besides: a coupon of its own is enough.
    s = stream()
    sale(s, 0)
    s.share(50_000, "a", ("t1", "t2", "t3"), coupon="sale")
    s.share(50_010, "a", ("t1", "t2", "t3"), coupon="own-a")
    s.share(50_020, "b", ("t1", "t2", "t3"), coupon="own-b")
    s.share(50_030, "c", ("t1", "t2", "t3"), coupon="own-c")
    assert {"m|a", "m|b", "m|c"} <= ring_flags(s).keys()


def test_a_fan_naming_a_rings_targets_with_a_sales_coupon_still_breaks_the_circle() -> None:
    # Two ring members name the three targets; a fan of the sale named one of
    # them with the sale's coupon, and names nothing else of the ring: a
    # real user's friend hears from others, so no circle (as before).
    for no_crowds in (True, False):
        s = stream(no_crowds)
        sale(s, 0)
        s.share(50_000, "fan0", ("t1",), coupon="sale")
        s.share(50_010, "a", ("t1", "t2", "t3"), coupon="own-a")
        s.share(50_020, "b", ("t1", "t2", "t3"), coupon="own-b")
        s.share(50_030, "c", ("t1", "t2", "t3"), coupon="own-c")
        assert ring_flags(s) == {}
