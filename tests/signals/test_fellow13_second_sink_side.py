"""``sink_feeder``'s block (sinks.py) seen from the second sink's side: a
block member's second sink is the ring's only when half or more of its own
feeders feed the sink, another second sink of the sink's feeders, or
another sink that two of its own feeders feed (fellow13, issue 10).

A ring's other sinks are fed by the ring; a real heavy claimer that two
friends of a popular claimer also reach is fed mostly by friends of its
own, who feed nothing there."""

from __future__ import annotations

from tests.signals.test_engine import MONTH, T0, published
from tests.signals.test_feeder13_own_second_sinks import Stream


def seconds_fed_by_their_own(meet: bool) -> Stream:
    """p1 and p2, heavy claimers reached by "a" and three friends each; two
    of p1's friends reach q, two of p2's reach r. q and r are each fed by
    two more accounts that feed a second heavy claimer too: each its own
    (y-…, with two quiet sharers), or, with ``meet``, one z together."""
    s = Stream()
    for sink, friends in (("p1", ("a", "b1", "b2", "f1")), ("p2", ("a", "c1", "c2", "f2"))):
        for friend in friends:
            s.send(friend, sink)
    for second in ("q", "r"):
        for i in range(2):
            other = "z" if meet else f"y{i}-{second}"
            s.send(f"g{i}-{second}", second, other)
            if not meet:
                for k in range(2):
                    s.send(f"h{k}-{other}", other)
        for k in range(4):
            s.send(f"f{k}-{second}", second)
    if meet:
        s.send("h-z", "z")
    for friend, second in (("b1", "q"), ("b2", "q"), ("c1", "r"), ("c2", "r")):
        s.send(friend, second)
    return s


def test_second_sinks_fed_by_friends_of_their_own_are_no_ring_sinks() -> None:
    # q's feeders: g0, g1 (each feeding a claimer of its own), four quiet
    # friends, and b1, b2: 2 of 8 feed p1 or another of its feeders' sinks.
    s = seconds_fed_by_their_own(meet=False)
    now = s.n * 1000
    assert published(s.engine, "sink_feeder", "a", now) is None


def test_second_sinks_whose_feeders_meet_on_another_sink_are_the_rings() -> None:
    # The same, but g0 and g1 of q (and of r) meet on z: a ring's sink two
    # hops away; 4 of 8 of q's feeders are the ring's.
    s = seconds_fed_by_their_own(meet=True)
    now = s.n * 1000
    assert published(s.engine, "sink_feeder", "a", now) == f"2@{T0 + MONTH}"
