"""Reward rings found from their recipients' side: a block of sharers feeding
the same heavy-claiming recipients.

A reward ring is a group of accounts sharing again and again to the same
few accounts (its *sinks*, which may be the members themselves), and the
sinks claim nearly everything. Nothing in a member's own history gives it
away at its first ring share, and its members are weeks old and receive
from each other, so they are not *fresh* (recipients.py). What gives the
ring away is its shape: the sharers of one sink also share to the sink's
fellow sinks, which claim heavily too. A real user who claims a lot is
reached by friends who, now and then, also share to a common friend; but
those friends are a few of its many sharers, and the common friends claim
as real people do.

Per recipient ``R`` the consumer already keeps its distinct sharers and its
credited receipts, and per sharer the recipients it reached (sinks.py). When
``R`` gets a share or a report, it is judged:

- ``R`` is *heavy*: ``sink_receipts`` reports or more, crediting on average
  ``sink_claim`` or more (each receipt credited claimed / delivered);
- its *fellows*: other heavy recipients that at least ``block_fellow`` of
  ``R``'s sharers reached (its *candidates*), each of whose own sharers
  also reached ``R`` or another candidate, ``block_share`` of them or more;
  it needs ``block_fellows`` of them (a ring's sharers feed many sinks, the
  friends of a popular real claimer meet on a common heavy-claiming friend
  or so);
- its *block*: ``R``'s sharers that also reached one of its fellows;
- ``R`` is a *ring sink* when its block has ``block_members`` sharers or
  more and they are at least ``block_share`` of its sharers (a popular real
  claimer's friends who meet on a common friend are a few of its many).

The fellow's side is the block test seen from the fellow: a ring's
members feed the ring's sinks, so most of each sink's sharers reach
another of them (a rotating ring's sinks are fed by changing subsets of
its members, so a fellow's sharer may reach ``R`` or any other of them). A
real community's heavy claimers are each other's candidates by chance:
three friends of one claimer also reach a popular claimer of their own,
most of whose sharers reach none of the others (issue 10, seed 402 at
10 000 users: 2 to 4 of its 9 to 32 sharers). To evade this, a ring must
give each sink but one as many sharers that feed no other of its sinks as
it has that do, the cover the sink's own test already asks of it.

A ring sink is published on the board (kind ``b``, value: its block's
size) for ``window_ms``, withdrawn when it no longer is one; each member of
its block, and each of its fellows (kind ``m``, value: the largest block it
is in) for ``window_ms`` from the last time it was seen in one: in a ring
whose targets are its own members the fellows are members that have not
shared yet (``block_fellows_flagged``). The ``ring_block`` rule judges a
share naming a ring sink (a member's first share to it is caught) and every
share of a member, from whichever device (rings rotate devices, and the
device hashes of ``sink_feeder`` reach a new device only after its first
share).

A ring is also found before any of its recipients is heavy, from what its
recipients *are*: a closed circle (circles.py), whose recipients keep their
``b`` flag for the window whatever their later judgements here find.

Work per judgement: at most ``sharers_per_recipient`` x
``recipients_per_sharer`` (32 x 128) lookups, only for a heavy recipient
with ``block_members`` sharers or more, and as many again per candidate
(its sharers' recipients, each sharer's read once per event); no Redis
work in the consumer beyond the board's writes, none in the decision.
"""

from __future__ import annotations

from collections import Counter

from riskservice.signals.base import claims_on_average
from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.circles import ClosedCircles
from riskservice.signals.cores import ClaimingCores
from riskservice.signals.share import Outcome, Share
from riskservice.signals.sinks import Received, SinkFeeder

__all__ = ["RingBlocks"]


class RingBlocks:
    """Ring sinks and their blocks, judged on :class:`SinkFeeder`'s state and
    published on a :class:`Board`."""

    def __init__(self, config: SignalConfig, board: Board, feeder: SinkFeeder) -> None:
        self.c, self.board, self.feeder = config, board, feeder
        # A fellow's sharers (none when it is not heavy) and a sharer's
        # recipients, asked again and again by the judgements of one event
        # (its recipients share fellows): kept for that event.
        self._fellows: dict[str, tuple[str, ...]] = {}
        self._reached: dict[str, set[str]] = {}
        # Rings found before any recipient is heavy (circles.py).
        self.circles = ClosedCircles(config, board, feeder)
        # Rings whose targets are their own members (cores.py).
        self.cores = ClaimingCores(config, self.circles, feeder)

    def share(self, share: Share) -> list[BoardWrite]:
        # (after SinkFeeder.share: the share is in its state already)
        self._fellows, self._reached = {}, {}
        writes = self.circles.share(share) + self.cores.share(share)
        for r in share.recipients:
            writes += self.judge(r, share.t_ms)
        return writes

    def outcome(self, share: Share, outcome: Outcome) -> list[BoardWrite]:
        if outcome.delivered <= 0:
            return []
        self._fellows, self._reached = {}, {}
        writes: list[BoardWrite] = []
        for r in share.recipients:
            writes += self.judge(r, outcome.t_ms)
        return writes

    def heavy(self, got: Received | None, now: int, receipts: int) -> bool:
        """At least ``receipts`` reports, crediting on average ``sink_claim`` or more."""
        if got is None:
            return False
        credits = [v for _, v in got.receipts.items(now)]
        return len(credits) >= receipts and claims_on_average(credits, self.c.sink_claim)

    def fellow_sharers(self, recipient: str, now: int) -> tuple[str, ...]:
        """The sharers of ``recipient`` when it claims heavily enough to be a
        fellow, else none (once per event)."""
        hit = self._fellows.get(recipient)
        if hit is None:
            got = self.feeder.received.peek(recipient, now)
            heavy = got is not None and self.heavy(got, now, self.c.block_fellow_receipts)
            hit = self._fellows[recipient] = tuple(got.sharers.keys(now)) if heavy and got is not None else ()
        return hit

    def reached(self, sharer: str, now: int) -> set[str]:
        """The recipients ``sharer`` reached (once per event)."""
        hit = self._reached.get(sharer)
        if hit is None:
            fed = self.feeder.fed.peek(sharer, now)
            hit = self._reached[sharer] = set(fed.keys(now)) if fed else set()
        return hit

    def fed_by_ring(self, fellow: str, sinks: set[str], now: int) -> bool:
        """Whether ``block_share`` or more of ``fellow``'s sharers also reached
        another of ``sinks`` (the candidate ring's heavy claimers): the block
        test from the fellow's side."""
        sharers = self.fellow_sharers(fellow, now)
        others = sinks - {fellow}
        fed = sum(1 for s in sharers if not self.reached(s, now).isdisjoint(others))
        return fed >= self.c.block_share * len(sharers)

    def ring(self, recipient: str, now: int) -> tuple[list[str], set[str]]:
        """The block of ``recipient`` and its fellows (both empty when it is no ring sink)."""
        c, feeder = self.c, self.feeder
        got = feeder.received.peek(recipient, now)
        # Most recipients have a sharer or two: bounds first, windows after.
        if got is None or len(got.sharers) < c.block_members or len(got.receipts) < c.block_receipts:
            return [], set()
        if not self.heavy(got, now, c.block_receipts):
            return [], set()
        sharers = got.sharers.keys(now)
        if len(sharers) < c.block_members:
            return [], set()
        reached: dict[str, list[str]] = {}
        counts: Counter[str] = Counter()
        for s in sharers:
            fed = feeder.fed.peek(s, now)
            reached[s] = [r for r in fed.keys(now) if r != recipient] if fed else []
            counts.update(reached[s])
        heavy = {r for r, n in counts.items() if n >= c.block_fellow and self.fellow_sharers(r, now)}
        fellows = {r for r in heavy if self.fed_by_ring(r, heavy | {recipient}, now)}
        if len(fellows) < c.block_fellows:
            return [], set()
        block = [s for s in sharers if any(r in fellows for r in reached[s])]
        if len(block) < c.block_members or len(block) < c.block_share * len(sharers):
            return [], set()
        return block, fellows

    def judge(self, recipient: str, now: int) -> list[BoardWrite]:
        """Publish or withdraw ``recipient`` as a ring sink, and flag its block."""
        block, fellows = self.ring(recipient, now)
        circled = self.circles.circled.get(recipient, now)
        if not block:
            # (a closed circle's recipient keeps its flag for the window)
            return [] if circled is not None else self.board.clear("b", recipient, now)
        size, until = max(len(block), circled or 0), now + self.c.window_ms
        writes: list[BoardWrite] = []
        held = self.board.get("b", recipient, now)
        # Every share moves `until`: re-published when the value changes or
        # half the window has gone (fewer versions for the workers to read).
        if held is None or held[0] != size or held[1] - now <= self.c.window_ms // 2:
            writes += self.board.set("b", recipient, size, until, now)
        # The fellows are flagged too: a ring whose targets are its own
        # members has its next shares made by them, before any of their
        # sharers' blocks forms (a fellow that never shares loses nothing).
        flagged = sorted(block) + (sorted(fellows - set(block)) if self.c.block_fellows_flagged else [])
        for s in flagged:
            held = self.board.get("m", s, now)
            if held is None or held[0] < size or held[1] - now <= self.c.window_ms // 2:
                writes += self.board.set("m", s, max(size, held[0] if held else 0), until, now)
                writes += self.board.clear("w", s, now)  # a ring member has no standing
        return writes
