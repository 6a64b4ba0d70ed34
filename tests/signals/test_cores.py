"""Reward rings whose targets are their own members (claiming cores, cores.py),
on crafted share streams, and the two graph walks the signal rests on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.cores import closed_inflow, core_of
from riskservice.signals.engine import SignalEngine
from tests.signals.test_blocks import HOUR, ring_flags
from tests.signals.test_board import MONTH, T0, Stream

RING = ("a", "b", "c", "d", "e")
# Each member names one or two fellows a share, as a sparse ring does: a
# cycle through all five, then three chords. At the second chord the five
# have 7 links among them (3 independent cycles).
LINKS = (("a", ("b",)), ("b", ("c",)), ("c", ("d",)), ("d", ("e",)), ("e", ("a",)),
         ("a", ("c",)), ("b", ("d",)), ("c", ("e", "a")))


def stream(**changes: object) -> Stream:
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), **changes))  # type: ignore[arg-type]
    return s


def ring(s: Stream, start: int = 0, claimed: bool = True, links: int = len(LINKS)) -> int:
    """The ring's shares from ``start`` (ms), an hour apart, each claimed by
    all its recipients (or by none); the time of the last."""
    t = start
    for i, (sharer, recipients) in enumerate(LINKS[:links]):
        t = start + i * HOUR
        s.share(t, sharer, recipients, claimed=len(recipients) if claimed else 0, coupon=f"k{i}")
    return t


def members(s: Stream) -> dict[str, str]:
    return {k[2:]: v for k, v in ring_flags(s).items() if k.startswith("m|")}


def test_five_accounts_sharing_to_one_another_and_claiming_are_a_ring() -> None:
    # Nobody else shares to them, so every one is fed from inside the five:
    # at the seventh share (b naming d) they have three independent cycles
    # and every receipt claimed, and all five are ring members for the window.
    for cores, expected in ((False, {}), (True, {m: f"5@{T0 + 6 * HOUR + MONTH}" for m in RING})):
        s = stream(cores=cores)
        ring(s, links=7)
        assert members(s) == expected
    # Not before: at the sixth share (a naming c) there are two cycles.
    s = stream()
    ring(s, links=6)
    assert members(s) == {}


def test_a_ring_whose_members_claim_little_is_no_claiming_core() -> None:
    s = stream()
    ring(s, claimed=False)
    assert members(s) == {}


def test_a_member_someone_outside_shared_to_opens_the_inflow() -> None:
    # An account nobody shared to (whoever had the coupon first) shared to a
    # before the ring's shares: the inflow reaches a source, so it is open.
    s = stream()
    s.share(0, "outsider", ("a",), claimed=1, coupon="k")
    ring(s, start=HOUR)
    assert members(s) == {}


def test_a_member_that_posted_to_a_group_breaks_the_core() -> None:
    s = stream()
    s.share(0, "c", tuple(f"member{i}" for i in range(12)), coupon="g")
    ring(s, start=HOUR)
    assert members(s) == {}


def test_friends_passing_one_coupon_around_are_no_ring() -> None:
    # The ring's shape and claims, but the five pass two coupons around among
    # themselves (a real cascade bouncing in a group of friends): 2 distinct
    # coupons on its links, under one per member (`core_coupons`).
    for per_member, expected in ((1.0, {}), (0.4, {m: f"5@{T0 + 6 * HOUR + MONTH}" for m in RING})):
        s = stream(core_coupons=per_member)
        for i, (sharer, recipients) in enumerate(LINKS[:7]):
            s.share(i * HOUR, sharer, recipients, claimed=len(recipients), coupon=f"k{i % 2}")
        assert members(s) == expected


def test_a_friend_and_the_three_who_share_back_are_too_few() -> None:
    # h shares to x, y and z, who each share back to h and claim: a closed
    # core of four with three cycles, as a small family or group of friends
    # makes. Under `core_members` (5); a ring of four at 4.
    for least, expected in ((5, {}), (4, {m: f"4@{T0 + 3 * HOUR + MONTH}" for m in "hxyz"})):
        s = stream(core_members=least)
        s.share(0, "h", ("x", "y", "z"), claimed=3, coupon="k0")
        for i, friend in enumerate("xyz"):
            s.share((i + 1) * HOUR, friend, ("h",), claimed=1, coupon=f"k{i + 1}")
        assert members(s) == expected


def inflow(links: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Recipient -> its senders, from (sender, recipient) links."""
    graph: dict[str, list[str]] = {}
    for sender, recipient in links:
        graph.setdefault(recipient, []).append(sender)
    return graph


def test_the_closed_inflow_is_none_at_a_source_or_past_its_reach() -> None:
    graph = inflow([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert closed_inflow("d", lambda x: graph.get(x, []), reach=32) == {"a", "b", "c", "d"}
    assert closed_inflow("d", lambda x: graph.get(x, []), reach=3) is None
    graph["a"].append("source")  # someone nobody shared to
    assert closed_inflow("d", lambda x: graph.get(x, []), reach=32) is None


def test_the_core_leaves_out_whom_the_sharer_does_not_reach_back() -> None:
    # a, b and c share around a cycle; d hears from c and shares back to a,
    # e hears from d and shares back to d: all five reach one another.
    graph = inflow([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "a"), ("d", "e"), ("e", "d")])
    accounts = closed_inflow("a", lambda x: graph.get(x, []), reach=32)
    assert accounts == {"a", "b", "c", "d", "e"}
    assert core_of("a", accounts, lambda x: graph.get(x, [])) == {"a", "b", "c", "d", "e"}
    # a and b share back and forth, and a also hears from x, which shares
    # back and forth with y: x and y feed a but a never reaches them.
    tail = inflow([("a", "b"), ("b", "a"), ("x", "a"), ("y", "x"), ("x", "y")])
    accounts = closed_inflow("a", lambda x: tail.get(x, []), reach=32)
    assert accounts == {"a", "b", "x", "y"}
    assert core_of("a", accounts, lambda x: tail.get(x, [])) == {"a", "b"}
