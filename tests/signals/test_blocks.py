"""Rings found from their recipients' side (ring_block, blocks.py), and
groups riding a popular coupon (lockstep), on crafted share streams."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_board import MONTH, T0, Stream
from tests.signals.test_engine import published, share

HOUR = 3_600_000


def ring_flags(s: Stream) -> dict[str, str]:
    return {k: f"{v}@{u}" for k, (v, u) in s.engine.board.entries.items() if k[0] in "bm"}


def claims_only(**changes: object) -> Stream:
    """A stream whose engine finds rings from heavy claimers only (no closed
    circles): three sharers naming the same three accounts are a closed
    circle at the third share already, before any report."""
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), circles=False, **changes))  # type: ignore[arg-type]
    return s


def test_three_sharers_feeding_the_same_three_heavy_claimers_are_a_ring() -> None:
    s = claims_only()
    # Three accounts, weeks old (not fresh: the consumer watched them from its
    # start), each share to the same three accounts, which claim everything.
    for i, member in enumerate("abc"):
        s.share(i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i}")
    # At the third report every sink has 3 sharers and 3 heavy reports, and
    # two fellows (the others, reached by all three): a block of 3, all of
    # their sharers. Members flagged for the window from then.
    # The sinks are each other's fellows: flagged as members too.
    until = T0 + 21 + MONTH
    assert ring_flags(s) == {"b|s1": f"3@{until}", "b|s2": f"3@{until}", "b|s3": f"3@{until}",
                             "m|a": f"3@{until}", "m|b": f"3@{until}", "m|c": f"3@{until}",
                             "m|s1": f"3@{until}", "m|s2": f"3@{until}", "m|s3": f"3@{until}"}
    # Not fresh accounts: no sink from fresh inflow, no feeder flags.
    assert [k for k in s.engine.board.entries if k[0] in "rs"] == []


def test_sinks_claiming_exactly_half_on_average_are_heavy() -> None:
    s = claims_only()
    # Reports crediting 1/2, 2/3 and 1/3: exactly half on average, though
    # their floating-point sum is 1.4999999999999998.
    for i, (member, delivered, claimed) in enumerate([("a", 6, 3), ("b", 3, 2), ("c", 3, 1)]):
        s.share(i * 10, member, ("s1", "s2", "s3"), claimed=claimed, delivered=delivered, coupon=f"c{i}")
    until = T0 + 21 + MONTH
    assert ring_flags(s) == {"b|s1": f"3@{until}", "b|s2": f"3@{until}", "b|s3": f"3@{until}",
                             "m|a": f"3@{until}", "m|b": f"3@{until}", "m|c": f"3@{until}",
                             "m|s1": f"3@{until}", "m|s2": f"3@{until}", "m|s3": f"3@{until}"}


def test_friends_meeting_on_one_common_heavy_claimer_are_no_ring() -> None:
    s = Stream()
    # Three friends of a popular heavy claimer also share to one common
    # heavy-claiming friend: each of the two has a single fellow.
    for i, friend in enumerate("abc"):
        s.share(i * 10, friend, ("popular", "common"), claimed=2, coupon=f"c{i}")
    assert ring_flags(s) == {}
    # Once they also feed a third heavy claimer, it has two fellows: a ring
    # at its third report (the other two are judged at their next event).
    for i, friend in enumerate("abc"):
        s.share(100 + i * 10, friend, ("third",), claimed=1, coupon=f"d{i}")
    # Its fellows (the two others) are flagged as members with the block.
    until = T0 + 121 + MONTH
    assert ring_flags(s) == {"b|third": f"3@{until}", "m|a": f"3@{until}", "m|b": f"3@{until}", "m|c": f"3@{until}",
                             "m|common": f"3@{until}", "m|popular": f"3@{until}"}


def test_a_ring_sinks_fellows_are_members_before_they_share() -> None:
    s = claims_only()
    # A ring whose targets are its own members: a, b and c share to d, e and
    # f, which claim everything and have shared nothing yet.
    for i, member in enumerate("abc"):
        s.share(i * 10, member, ("d", "e", "f"), claimed=3, coupon=f"c{i}")
    until = T0 + 21 + MONTH
    # d's fellows are e and f (and so on): all three flagged as members, so
    # their first shares (to anyone) meet ring_block.
    assert {m: s.flag("m", m, 30) for m in "def"} == {m: (3, until) for m in "def"}
    # Switched off, only the sharers are members.
    off = claims_only(block_fellows_flagged=False)
    for i, member in enumerate("abc"):
        off.share(i * 10, member, ("d", "e", "f"), claimed=3, coupon=f"c{i}")
    assert sorted(k for k in ring_flags(off) if k[0] == "m") == ["m|a", "m|b", "m|c"]


def test_two_sharers_are_no_block_and_a_third_makes_one() -> None:
    s = Stream()
    for i, member in enumerate("ab"):
        s.share(i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i}")
    s.share(20, "a", ("s1",), claimed=1, coupon="c2")  # a third report for s1
    assert ring_flags(s) == {}
    # A new member's first share names the sinks (the decision saw the board
    # as of before it); the share itself makes the block, before its report.
    s.share(30, "c", ("s1", "s2", "s3"), claimed=3, coupon="c3")
    assert s.flag("b", "s1", 40) == (3, T0 + 30 + MONTH)
    assert s.flag("m", "c", 40) == (3, T0 + 30 + MONTH)


def test_fellows_claiming_as_real_people_do_make_no_ring() -> None:
    s = Stream()
    # Three friends share to one heavy claimer and to a common friend who
    # claims nothing: the heavy claimer has no heavy fellow.
    for i, friend in enumerate("abc"):
        s.share(i * 10, friend, ("popular",), claimed=1, coupon=f"c{i}")
        s.share(i * 10 + 5, friend, ("common",), claimed=0, coupon=f"c{i}")
    assert ring_flags(s) == {}


def three_claimers(own_friends: int) -> Stream:
    """Three heavy claimers reached by ``own_friends`` friends of their own
    each, then by three friends of all three sharing to them (a block of 3)."""
    s = Stream()
    for target in "pqr":
        for i in range(own_friends):
            s.share(i * 10, f"{target}-friend-{i}", (target,), claimed=1, coupon=f"d{i}")
    for i in range(3):
        s.share(100 + i * 10, f"all-{i}", ("p", "q", "r"), claimed=3, coupon=f"c{i}")
    return s


def test_popular_claimers_whose_sharers_are_mostly_their_own_friends_are_no_ring() -> None:
    # With four friends of their own each, the three are fewer than half of
    # the sharers of any: no ring.
    assert ring_flags(three_claimers(4)) == {}
    # With two friends of their own each, the three are more than half: a ring.
    assert three_claimers(2).flag("b", "p", 200) == (3, T0 + 120 + MONTH)


def test_a_sink_that_stops_being_heavy_is_withdrawn_and_members_keep_their_flag() -> None:
    s = claims_only()
    for i, member in enumerate("abc"):
        s.share(i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i}")
    assert s.flag("b", "s1", 30) is not None
    # Three reports in which s1 (alone) claimed nothing: 3 of 6 credits, still
    # half; a fourth brings it under.
    for k in range(4):
        s.share(100 + k, "d", ("s1",), claimed=0, coupon=f"e{k}")
    assert s.flag("b", "s1", 200) is None
    assert s.flag("m", "a", 200) == (3, T0 + 21 + MONTH)


def test_a_ring_member_loses_its_fan_out_waiver() -> None:
    s = Stream()
    group = tuple(f"g{i}" for i in range(12))
    s.share(0, "a", group, claimed=3, coupon="c0")  # a fan-out share claimed as real people do
    assert s.flag("w", "a", 10) is not None
    for i, member in enumerate("abc"):
        s.share(100 + i * 10, member, ("s1", "s2", "s3"), claimed=3, coupon=f"c{i + 1}")
    assert s.flag("w", "a", 200) is None


def test_a_group_riding_a_popular_coupon_still_meets_on_it() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    # A group of four shares a popular live coupon within seconds ...
    for i, user in enumerate("abcd"):
        share(engine, i, i * 1000, user, coupon="pop")
    # ... which twenty real users share too over the next hours, ten minutes
    # apart: a crowd over the day (24 sharers), never 20 within an hour.
    for i in range(20):
        share(engine, 10 + i, 20 * 60_000 + i * 600_000, f"fan-{i}", coupon="pop")
    # Three of the group meet again on another coupon.
    for i, user in enumerate("abc"):
        share(engine, 100 + i, 4 * HOUR + i * 1000, user, coupon="pop2")
    now = 4 * HOUR + 3000
    # Their repeated meetings count (the popular coupon is no flash sale) ...
    assert published(engine, "lockstep", "a", now) == f"2@{T0 + 4 * HOUR + 1000 + MONTH}"
    assert published(engine, "lockstep", "c", now) == f"2@{T0 + 4 * HOUR + 2000 + MONTH}"
    # ... but a single meeting with them on it does not: d is not flagged
    # (on a calm coupon it would be, test_engine.py), nor is any fan.
    assert published(engine, "lockstep", "d", now) is None
    assert [published(engine, "lockstep", f"fan-{i}", now) for i in range(20)] == [None] * 20


def test_a_rush_of_sharers_within_the_hour_makes_no_meetings() -> None:
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    lockstep = engine.signals[1]
    # Two flash sales a day apart, twenty fans each within minutes; the same
    # five fans are in both.
    for k in range(2):
        for i in range(20):
            user = f"fan-{i}" if i < 5 else f"fan-{k}-{i}"
            share(engine, 100 * k + i, k * DAY_MS + i * 10_000, user, coupon=f"sale-{k}")
    now = DAY_MS + 200_000
    assert [published(engine, "lockstep", f"fan-{i}", now) for i in range(5)] == [None] * 5
    assert lockstep.reading("fan-0", T0 + now).value == 0  # type: ignore[attr-defined]


def test_a_closed_circle_is_a_ring_before_any_report() -> None:
    s = Stream()
    # Two accounts name the same three accounts (no reports: nobody knows
    # yet whether they claim); nobody else shares to them or to the two.
    s.share(0, "a", ("t1", "t2", "t3"), coupon="c0")
    s.share(10, "b", ("t1", "t2"), coupon="c1")
    assert ring_flags(s) == {}  # one other sharer: no circle yet
    # A third names them: a circle of three sharers. Its recipients are ring
    # sinks, and members with its sharers.
    s.share(20, "c", ("t1", "t2", "t3"), coupon="c2")
    until = T0 + 20 + MONTH
    assert ring_flags(s) == {**{f"b|{t}": f"3@{until}" for t in ("t1", "t2", "t3")},
                             **{f"m|{m}": f"3@{until}" for m in ("a", "b", "c", "t1", "t2", "t3")}}
    # A report crediting nothing does not withdraw it (no claim was needed),
    # and a fourth sharer's circle raises the value.
    s.share(30, "a", ("t1",), claimed=0, coupon="c3")
    assert s.flag("b", "t1", 40) == (3, until)
    s.share(50, "d", ("t1", "t2", "t3"), coupon="c4")
    assert s.flag("b", "t1", 60) == (4, T0 + 50 + MONTH) and s.flag("m", "d", 60) == (4, T0 + 50 + MONTH)
    # Switched off, nothing.
    off = claims_only()
    for i, (member, named) in enumerate([("a", ("t1", "t2", "t3")), ("b", ("t1", "t2")), ("c", ("t1", "t2", "t3"))]):
        off.share(i * 10, member, named, coupon=f"c{i}")
    assert ring_flags(off) == {}


def test_friends_who_hear_from_others_are_no_circle() -> None:
    # A recipient another account named alone (a friend of theirs): not closed.
    s = Stream()
    s.share(0, "friend", ("t2",), coupon="c9")
    for i, member in enumerate("abc"):
        s.share(10 + i * 10, member, ("t1", "t2", "t3"), coupon=f"c{i}")
    assert ring_flags(s) == {}
    # A sharer that hears from someone outside (its own friend): not closed.
    s = Stream()
    s.share(0, "friend", ("a",), coupon="c9")
    for i, member in enumerate("abc"):
        s.share(10 + i * 10, member, ("t1", "t2", "t3"), coupon=f"c{i}")
    assert ring_flags(s) == {}
    # Inside the circle it may: the sharers naming each other (a ring whose
    # targets are its members) are still closed.
    s = Stream()
    s.share(0, "a", ("b", "c", "d"), coupon="c0")
    s.share(10, "b", ("c", "d", "a"), coupon="c1")
    s.share(20, "c", ("d", "a", "b"), coupon="c2")
    assert s.flag("m", "c", 30) == (3, T0 + 20 + MONTH)


def test_shares_naming_two_accounts_are_no_circle() -> None:
    s = Stream()
    # Three friends share to the same two friends, again and again: too
    # small a share for a circle (`circle_recipients` is 3).
    for k in range(2):
        for i, friend in enumerate("abc"):
            s.share(k * 100 + i * 10, friend, ("p", "q"), coupon=f"c{k}{i}")
    assert ring_flags(s) == {}


def one_target_a_share(s: Stream, t: int) -> None:
    """Three members (a, b, c) each reach a ring's two targets, one per
    share, from ``t`` on, 10 ms apart."""
    for member in "abc":
        for target in ("t1", "t2"):
            s.share(t, member, (target,), coupon=f"c{t}")
            t += 10


def test_a_ring_naming_one_target_a_share_is_a_circle_across_its_shares() -> None:
    s = Stream()
    # Three members each reach the ring's two targets, one per share; nobody
    # else reaches them or the members.
    one_target_a_share(s, 0)
    assert ring_flags(s) == {}  # at c's shares, two other sharers: not yet
    # A fourth reaches t1, then t2: t2's other sharers (three) each reached
    # both accounts d reached. A circle of four sharers, flagged as members;
    # the share's recipient is not flagged (across shares, the recipients of
    # one share need not be the ring's targets: a cover share to real users).
    s.share(100, "d", ("t1",), coupon="d1")
    s.share(110, "d", ("t2",), coupon="d2")
    until = T0 + 110 + MONTH
    assert ring_flags(s) == {f"m|{m}": f"4@{until}" for m in "abcd"}


def test_sharers_with_friends_of_their_own_are_no_circle_across_shares() -> None:
    s = Stream()
    s.share(0, "friend", ("a",), coupon="c0")  # a hears from a friend outside
    one_target_a_share(s, 10)
    s.share(100, "d", ("t1",), coupon="d1")
    s.share(110, "d", ("t2",), coupon="d2")
    assert ring_flags(s) == {}


def test_a_sharer_naming_a_circles_recipient_joins_it() -> None:
    for joins in (True, False):
        s = Stream()
        s.engine = SignalEngine(replace(SignalConfig(), circle_joins=joins))
        for i, member in enumerate("abc"):
            s.share(i * 10, member, ("t1", "t2", "t3"), coupon=f"c{i}")
        # A new account names one of the circle's recipients (and a friend).
        s.share(100, "e", ("t1", "z"), coupon="c9")
        assert s.flag("m", "e", 110) == ((3, T0 + 100 + MONTH) if joins else None)
        assert s.flag("m", "z", 110) is None  # the friend is not named a member


def test_shares_naming_more_than_the_bound_are_not_judged_as_circles() -> None:
    # The bound on the work per share: with `circle_max_recipients` 3, the
    # same circle is not judged from a share naming four.
    for bound, expected in ((3, None), (4, (3, T0 + 20 + MONTH))):
        s = Stream()
        s.engine = SignalEngine(replace(SignalConfig(), circle_max_recipients=bound))
        for i, member in enumerate("abc"):
            s.share(i * 10, member, ("t1", "t2", "t3", "t4"), coupon=f"c{i}")
        assert s.flag("m", "c", 30) == expected


def test_a_groups_posts_are_no_circle() -> None:
    """Three admins posting to the same group of twelve, whose members hear from nobody else: a
    group post names more than `circle_max_recipients` (10 by default) and is not judged; the same
    admins naming ten of them at a time would be."""
    group = tuple(f"member{i}" for i in range(12))
    for named, expected in ((group, None), (group[:10], (3, T0 + 20 + MONTH))):
        s = Stream()
        for i, admin in enumerate(("admin1", "admin2", "admin3")):
            s.share(i * 10, admin, named, coupon=f"c{i}")
        assert s.flag("m", "admin3", 30) == expected
