"""``sink_feeder``'s block (sinks.py): the sink's other sharers must meet on
a second sink, not each reach one of their own; on crafted share streams.

Two popular real claimers of one community: a friend who reaches both (a
chat pusher) and, for each, two other friends who each reach a heavy
claimer of their own. Before, that was a ring's block twice over and the
pusher a feeder of two sinks."""

from __future__ import annotations

from riskservice.signals.engine import SignalEngine
from tests.signals.test_engine import MONTH, T0, outcome, published, share


class Stream:
    """Numbered shares, each claimed in full a moment later."""

    def __init__(self) -> None:
        self.engine = SignalEngine()
        self.n = 0

    def send(self, sharer: str, *recipients: str) -> int:
        t = self.n * 1000
        share(self.engine, self.n, t, sharer, coupon=f"own-{sharer}", recipients=recipients)
        outcome(self.engine, self.n, t + 10, delivered=len(recipients), claimed=len(recipients))
        self.n += 1
        return t


def community(seconds: dict[str, str], ring: bool = False) -> Stream:
    """p1 and p2, heavy claimers reached by "a" and by one quiet friend each
    (f1, f2); p1 by b1 and b2, p2 by c1 and c2, who reach the heavy claimers
    ``seconds`` names (each reached by two accounts of its own too, which
    with ``ring`` all feed one more heavy claimer, z: a ring's sinks)."""
    s = Stream()
    for sink, friends in (("p1", ("a", "b1", "b2", "f1")), ("p2", ("a", "c1", "c2", "f2"))):
        for friend in friends:
            s.send(friend, sink)
    for second in sorted(set(seconds.values())):
        for i in range(2):
            s.send(f"g{i}-{second}", second, *(("z",) if ring else ()))
    for friend, second in seconds.items():
        s.send(friend, second)
    return s


def test_friends_reaching_heavy_claimers_of_their_own_are_no_block() -> None:
    s = community({"b1": "q1", "b2": "q2", "c1": "r1", "c2": "r2"})
    now = s.n * 1000
    # b1 and b2 each feed p1 and a second sink, two of p1's three other
    # sharers (as for p2): a block by count, but they meet on p1 alone.
    assert published(s.engine, "sink_feeder", "a", now) is None
    assert [published(s.engine, "sink_feeder", f, now) for f in ("b1", "b2", "c1", "c2")] == [None] * 4


def test_other_sharers_meeting_on_a_second_sink_are_a_block() -> None:
    # The same stream, but b1 and b2 reach one heavy claimer q, and c1 and
    # c2 one r: each pair meets on two sinks, a ring's block for "a".
    s = community({"b1": "q", "b2": "q", "c1": "r", "c2": "r"})
    now = s.n * 1000
    assert published(s.engine, "sink_feeder", "a", now) == f"2@{T0 + MONTH}"


def test_a_block_member_meeting_the_sharer_on_its_second_sink_counts() -> None:
    # b1 and b2 reach p2 (the sharer's other sink) and c1, c2 reach p1: each
    # meets "a" on two sinks.
    s = community({"b1": "p2", "b2": "p2", "c1": "p1", "c2": "p1"})
    now = s.n * 1000
    assert published(s.engine, "sink_feeder", "a", now) == f"2@{T0 + MONTH}"


def test_other_sharers_feeding_each_a_ring_sink_of_its_own_are_a_block() -> None:
    # b1, b2, c1 and c2 each reach a sink of its own again, but each of those
    # is fed by two accounts that also feed z: the ring's sinks, so they are
    # a block by the first test, and p1 and p2 count for "a".
    s = community({"b1": "q1", "b2": "q2", "c1": "r1", "c2": "r2"}, ring=True)
    now = s.n * 1000
    assert published(s.engine, "sink_feeder", "a", now) == f"2@{T0 + MONTH}"
