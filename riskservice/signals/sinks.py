"""The sinks of a reward ring, and the sharers feeding them.

A ring's members share to a few accounts again and again, and those
accounts claim nearly everything (the reward is the point). Per recipient:
the distinct sharers that reached it and its receipts, each credited
claimed / delivered of its share (reports give counts, not names). A sink
has ``sink_sharers`` distinct sharers and claims on average ``sink_claim``
or more. Per sharer: the recipients it reached; the value is how many of
them are sinks, counting a sink only when others of its sharers feed a
second sink too, at least ``sink_block_min`` (two) of them and at least
``sink_block_share`` of them (a ring is a block of sharers feeding the same
sinks; a popular, heavy-claiming real user is reached by friends who have
nothing else in common, one or a few of whom reach another heavy claimer by
chance, and made every one of them look like a feeder), or when it is
flagged on the board from its fresh inflow. A block member's second sink
must be the ring's too: another of the sink's sharers (or the sharer)
feeds it as well, or it is a ring's sink by that first test (its other
sharers feeding a second sink are a block, or it is on the board). A ring's
members feed the ring's sinks, fed by its block; a real claimer's friends
who reach another heavy claimer each reach their own, a real user whose
friends feed no second sink (two real claimers of one community, each with
two such friends, made a chat pusher reaching both look like a feeder).
Seen from that second sink's side, half or more (``block_share``) of its
own sharers must feed the sink, another second sink of the sink's
sharers, or another sink two of its own sharers meet on: a ring's other
sinks are fed by the ring, while real friends of one large community
sharing to the same few heavy claimers meet on a real claimer fed mostly
by friends of its own (seed 402, where three in ten real users claim half
or more).
When a recipient becomes a sink, every sharer that fed it is re-read (and,
when a sharer's sinks change, the other sharers of its sinks), so the
decision never needs the recipient's own key (which would sit in another
slot on Redis Cluster).

A sharer that reached a recipient only with a crowd's coupons (a coupon
40 or more accounts shared in a day: a flash sale, a popular coupon) is
not feeding it: hundreds of fans sending the sale's coupon to their friends
in one evening reach, by chance, friends who claim a lot, and a few fans
reach two of them. Such a sharer neither makes the recipient a sink nor
counts it among the sinks it feeds; a ring's members feed their sinks
with coupons of their own, again and again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from riskservice.signals.base import Reading, claims_on_average, until_of
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["SinkFeeder"]


@dataclass(slots=True)
class Received:
    """A recipient's evidence: who shared to it, and its credited receipts."""

    # sharer -> the coupons of its shares that reached it (the last few)
    sharers: Recent[str, tuple[str, ...]]
    receipts: Recent[str, float]
    sink: bool = False


class Second(NamedTuple):
    """A second sink of a block member, as :meth:`SinkFeeder._ring_sink` reads it."""

    flagged: bool
    feeders: frozenset[str]
    # its feeders that feed two sinks or more
    multi: frozenset[str]


# recipient -> its evidence as a second sink (None: no sink), kept for one pass of readings
Seconds = dict[str, Second | None]


class SinkFeeder:
    """Sinks by recipient; per sharer the number of sinks it feeds."""

    code = "sink_feeder"
    per_device = False

    def __init__(self, config: SignalConfig, flagged: Callable[[str, int], bool] | None = None) -> None:
        self.config = config
        # Recipients flagged from their fresh inflow (recipients.py) are sinks too.
        self.flagged = flagged or (lambda recipient, now: False)
        # Whether a coupon turned out a crowd (set by the engine: fresh_bursts.py).
        self.crowded: Callable[[str, int], bool] = lambda coupon, now: False
        self.window = config.window_ms
        sharers, receipts, window = config.sharers_per_recipient, config.receipts_per_recipient, self.window
        self.received: Entities[str, Received] = Entities(
            config.entities, window, lambda: Received(Recent(sharers, window), Recent(receipts, window)))
        cap = config.recipients_per_sharer
        self.fed: Entities[str, Recent[str, None]] = Entities(config.entities, self.window,
                                                             lambda: Recent(cap, self.window))
        # sharer -> the sinks it fed at its last reading (the most recently
        # reached `sinks_per_sharer`: whom it meets on them, see _in_block)
        self.feeds: Recent[str, tuple[str, ...]] = Recent(config.entities, self.window)

    def senders(self, recipient: str, now: int) -> list[str]:
        """The accounts that shared to ``recipient`` in the window (the last
        ``sharers_per_recipient``)."""
        got = self.received.peek(recipient, now)
        return got.sharers.keys(now) if got is not None else []

    def feeders(self, recipient: str, now: int) -> list[str]:
        """The accounts that shared to ``recipient`` in the window with a
        coupon that is no crowd's (see the module: a fan sending a sale's
        coupon to its friends is not feeding them)."""
        got = self.received.peek(recipient, now)
        return self._feeders(got, now) if got is not None else []

    def share(self, share: Share) -> list[Reading]:
        # An attempt counts too: a refused share to a sink still shows who it was for.
        if not share.recipients:
            return []
        now = share.t_ms
        fed = self.fed.touch(share.user, now)
        changed: list[Received] = []
        for r in share.recipients:
            fed.put(r, None, now)
            got = self.received.touch(r, now)
            coupons = got.sharers.get(share.user, now) or ()
            if share.coupon not in coupons:
                coupons = (*coupons, share.coupon)[-4:]
            got.sharers.put(share.user, coupons, now)
            if self._judge(r, got, now):
                changed.append(got)
        return self._readings(share.user, changed, now)

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        if not share.recipients or outcome.delivered <= 0:
            return []
        now, credit = outcome.t_ms, min(outcome.claimed / outcome.delivered, 1.0)
        changed = []
        for r in share.recipients:
            got = self.received.touch(r, now)
            got.receipts.put(share.decision_id, credit, now)
            if self._judge(r, got, now):
                changed.append(got)
        return self._readings(share.user, changed, now)

    def _judge(self, recipient: str, got: Received, now: int) -> bool:
        """Update whether ``got`` is a sink; True when that changed."""
        c = self.config
        # (Too few kept, let alone live, sharers or receipts: most recipients, no list built.)
        # (The crowd test last: the claims rule out most recipients first.)
        sink = (len(got.sharers) >= c.sink_sharers and len(got.receipts) >= c.sink_receipts
                and len(credits := [v for _, v in got.receipts.items(now)]) >= c.sink_receipts
                and claims_on_average(credits, c.sink_claim)
                and len(self._feeders(got, now)) >= c.sink_sharers) or self.flagged(recipient, now)
        flipped = sink != got.sink
        got.sink = sink
        return flipped

    def _readings(self, user: str, changed: list[Received], now: int) -> list[Reading]:
        # The sharer itself, and every sharer of a recipient whose verdict changed.
        users = {user}
        for got in changed:
            users.update(got.sharers.keys(now))
        # Everyone's count of sinks first, so that no reading sees another's
        # stale one; a sharer that starts (or stops) feeding two sinks changes
        # whether its sinks count for their other sharers: they are re-read too.
        found = {u: self._sinks(u, now) for u in sorted(users)}
        others: set[str] = set()
        for u, (sinks, _) in found.items():
            before = self.feeds.get(u, now) or ()
            after = self._names(sinks)
            self.feeds.put(u, after, now)
            # (which sinks, not only how many: its block members meet on them)
            if before != after and (len(before) >= 2 or len(after) >= 2):
                others.update(o for _, _, got in sinks for o in got.sharers.keys(now))
        for o in sorted(others - found.keys()):
            found[o] = self._sinks(o, now)
            self.feeds.put(o, self._names(found[o][0]), now)
        # (every count above is final: second sinks are read once for all)
        seconds: Seconds = {}
        return [self._reading(u, *found[u], now, seconds) for u in sorted(found)]

    def _names(self, sinks: list[tuple[str, int, Received]]) -> tuple[str, ...]:
        """The most recently reached ``sinks_per_sharer`` of ``sinks`` (least recent first)."""
        return tuple(r for r, _, _ in sinks[-self.config.sinks_per_sharer:])

    def _sinks(self, user: str, now: int) -> tuple[list[tuple[str, int, Received]], int]:
        """The sinks ``user`` fed (recipient, last touch, its evidence), and how many it reached."""
        fed = self.fed.peek(user, now)
        sinks: list[tuple[str, int, Received]] = []
        reached = 0
        for r, t, _ in fed.entries(now) if fed else ():
            reached += 1
            got = self.received.peek(r, now)
            if got is not None and got.sink and self._fed_by(got, user, now):
                sinks.append((r, t, got))
        return sinks, reached

    def _fed_by(self, got: Received, user: str, now: int) -> bool:
        """Whether ``user`` reached the recipient with a coupon that is no crowd's."""
        return self._own(got.sharers.get(user, now) or (), now)

    def _own(self, coupons: tuple[str, ...], now: int) -> bool:
        """Whether one of ``coupons`` is no crowd's."""
        return any(not self.crowded(c, now) for c in coupons)

    def _feeders(self, got: Received, now: int) -> list[str]:
        """The recipient's sharers that reached it with a coupon that is no crowd's."""
        return [u for u, coupons in got.sharers.items(now) if self._own(coupons, now)]

    def _in_block(self, recipient: str, got: Received, user: str, now: int, seconds: Seconds) -> bool:
        """Whether a sink ``user`` fed is a ring's: others of its sharers feed a
        second sink that another of its sharers feeds too, or that is a ring's
        for them by the first test (see :meth:`_ring_sink`), at least
        ``sink_block_min`` of them and a fair part (``sink_block_share``) of
        them."""
        feeders = self._feeders(got, now)
        # Each feeder's other sinks, and how many of the feeders feed each.
        others_of = {u: [r for r in self.feeds.get(u, now) or () if r != recipient] for u in feeders}
        met: dict[str, int] = {}
        for rs in others_of.values():
            for r in rs:
                met[r] = met.get(r, 0) + 1
        others = [u for u in feeders if u != user]
        # A popular real claimer is reached by many friends, and among many a
        # few reach another heavy claimer by chance (flash-sale fans, group
        # admins); a ring's sinks are fed mostly by the ring's members. Such
        # friends reach each a claimer of its own, a real user again whose
        # own friends feed no second sink; a ring's members meet again on
        # the ring's other sinks, which its block feeds.
        # Seen from the second sink's side too: a ring's other sinks are fed
        # by the ring, so most of their own feeders feed this sink or another
        # of these feeders' sinks; a real claimer met by two friends of this
        # one is fed mostly by friends of its own who feed nothing else here.
        ring = {recipient, *met}
        own = set(feeders)
        fellow: dict[str, bool] = {}
        block = sum(1 for u in others
                    if any((met[r] >= 2 or self._ring_sink(r, u, now, seconds))
                           and self._fellow(r, own, ring, now, fellow) for r in others_of[u]))
        return block >= self.config.sink_block_min and block >= self.config.sink_block_share * len(others)

    def _fellow(self, second: str, own: set[str], ring: set[str], now: int, fellow: dict[str, bool]) -> bool:
        """Whether ``block_share`` or more of the feeders of ``second`` (a
        block member's second sink) are the ring's: feeders of the sink
        (``own``), or feeding another of the sinks its feeders feed
        (``ring``), or another sink that two of ``second``'s feeders feed;
        memoised in ``fellow``."""
        if second not in fellow:
            got = self.received.peek(second, now)
            feeders = self._feeders(got, now) if got is not None else []
            feeds = {v: [r for r in self.feeds.get(v, now) or () if r != second] for v in feeders}
            # (a ring's sinks two hops away: where the second sink's own feeders meet)
            met: dict[str, int] = {}
            for rs in feeds.values():
                for r in rs:
                    met[r] = met.get(r, 0) + 1
            ours = sum(1 for v in feeders if v in own or any(r in ring or met[r] >= 2 for r in feeds[v]))
            fellow[second] = bool(feeders) and ours >= self.config.block_share * len(feeders)
        return fellow[second]

    def _ring_sink(self, recipient: str, user: str, now: int, seconds: Seconds) -> bool:
        """Whether ``recipient``, a second sink of ``user``, is a ring's for it
        by the first test alone: on the board, or its other sharers that feed
        a second sink (whichever) are ``sink_block_min`` and
        ``sink_block_share`` of them."""
        if recipient not in seconds:
            seconds[recipient] = self._second(recipient, now)
        second = seconds[recipient]
        if second is None:
            return False
        flagged, feeders, multi = second
        if flagged:
            return True
        # (``user`` itself feeds two sinks; only its other sharers count)
        block, others = len(multi - {user}), len(feeders - {user})
        return block >= self.config.sink_block_min and block >= self.config.sink_block_share * others

    def _second(self, recipient: str, now: int) -> Second | None:
        """A second sink's evidence for :meth:`_ring_sink` (None: no sink now)."""
        got = self.received.peek(recipient, now)
        if got is None or not got.sink:
            return None
        if self.flagged(recipient, now):
            return Second(True, frozenset(), frozenset())
        feeders = frozenset(self._feeders(got, now))
        return Second(False, feeders, frozenset(u for u in feeders if len(self.feeds.get(u, now) or ()) >= 2))

    def _reading(self, user: str, sinks: list[tuple[str, int, Received]], reached: int, now: int,
                 seconds: Seconds) -> Reading:
        # A ring is a block: its members feed several sinks each, the ring's.
        # A popular real claimer's other sharers are friends who feed no
        # other sink, or each another real claimer of its own, so a sink
        # counts only when others of its sharers feed a second one that
        # another of them feeds too or that is a ring's by the first test,
        # a fair part of them (or it is on the board, flagged from its
        # inflow).
        touches = [t for r, t, got in sinks if self.flagged(r, now) or self._in_block(r, got, user, now, seconds)]
        # A hub reaching hundreds of friends feeds a popular one or two too:
        # sinks count only while they are a fair part of what the sharer reaches.
        value = len(touches) if len(touches) >= self.config.sink_fed_share * reached else 0
        return Reading(user, value, until_of(touches, self.window, now))
