"""A ring sink's fellow counts only when most of its own sharers also reach the
sink or another of its candidates (blocks.py, issue 10: a real community's
heavy claimers on seed 402 at 10 000 users)."""

from __future__ import annotations

from tests.signals.test_blocks import claims_only, ring_flags
from tests.signals.test_board import MONTH, T0, Stream


def friends_of_two_claimers(own_friends: int) -> Stream:
    """Three friends share to a heavy claimer ``p``, to another ``q`` and to a
    popular claimer who also hears from ``own_friends`` friends of its own."""
    s = claims_only()
    for i in range(own_friends):
        s.share(i * 10, f"own-{i}", ("popular",), claimed=1, coupon=f"d{i}")
    for i, friend in enumerate("abc"):
        s.share(100 + i * 10, friend, ("p", "q", "popular"), claimed=3, coupon=f"c{i}")
    return s


def test_a_popular_claimer_reached_by_a_few_of_the_sinks_sharers_is_no_fellow() -> None:
    # Of the popular claimer's 7 sharers only the three reach p or q: it is
    # no fellow of p or q, which then have one fellow each (each other), and
    # a ring sink needs two. Before, the three made all of them ring sinks.
    assert ring_flags(friends_of_two_claimers(4)) == {}


def test_a_fellow_fed_mostly_by_the_sinks_sharers_still_counts() -> None:
    # With two friends of its own, the three are 3 of its 5 sharers (half or
    # more) reaching p or q: a fellow, as a ring's sinks are, and p is a
    # ring sink.
    s = friends_of_two_claimers(2)
    assert s.flag("b", "p", 200) == (3, T0 + 121 + MONTH)
    # (the members from c's share, the sink again at its report)
    assert {m: s.flag("m", m, 200) for m in "abc"} == {m: (3, T0 + 120 + MONTH) for m in "abc"}


def test_a_ring_whose_sinks_hear_only_from_it_is_unchanged() -> None:
    # Every sink's sharers are the ring's: each fellow is fed by all of them.
    s: Stream = claims_only()
    for i, member in enumerate("abc"):
        s.share(i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i}")
    assert {k[0] for k in ring_flags(s)} == {"b", "m"}
    assert len(ring_flags(s)) == 9


def test_a_rotating_rings_fellows_count_through_its_other_sinks() -> None:
    # s1 is fed by a, b and c; s2 and s3 by them and by d, e, f and g, who
    # do not reach s1: three of the fellows' seven sharers reach s1, but all
    # seven reach another of s1's candidates. A ring feeding its sinks by
    # changing subsets of its members is still found from s1.
    s = claims_only()
    for i, member in enumerate("defg"):
        s.share(i * 10, member, ("s2", "s3"), claimed=2, coupon=f"d{i}")
    for i, member in enumerate("abc"):
        s.share(100 + i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i}")
    assert s.flag("b", "s1", 200) == (3, T0 + 121 + MONTH)
