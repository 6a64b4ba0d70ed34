"""Sinks judged from what they receive, and the fresh accounts feeding them.

A coupon hoarder never shares: fresh accounts, registered for the purpose,
share to it a few times each (with a real user as cover) and it claims
everything. A reward ring's sinks are filled the same way by its members.
Nothing in a feeder's own history gives it away at its first share; the
recipient does. Per recipient the consumer keeps its distinct sharers and
whether each was *fresh* when it first reached it, and its reported
receipts (each credited claimed / delivered of its share; reports give
counts, not names):

- **fresh**: the sharer had received no share in the window, and its first
  share was at most ``fresh_ms`` ago. A real user hears mostly from friends
  who receive shares themselves, so a popular, heavy-claiming real user has
  many sharers but few fresh ones (the batch scorer's hoarder signal rests on
  the same fact, ``graphs/scorers/receivers.py``). An account is only judged
  young once the consumer had watched ``fresh_after_ms`` before its first
  share: at the start of its history everybody looks new. And only a share
  naming at most :data:`FEED_RECIPIENTS` (three) accounts makes it a fresh
  sharer of each: a share to a group is no evidence of feeding one of them
  (see :data:`FEED_RECIPIENTS`).
- **a sink**: at least ``sink_fresh`` fresh sharers, who are at least
  ``sink_fresh_share`` of its sharers, and ``sink_receipts`` reports whose
  credit averages ``sink_claim`` or more. Fresh sharers that reached it with
  one and the same coupon, and nothing else, count as one (a coupon going
  round, see ``_judge``). And it has not shared in the window: a hoarder
  never shares (coupons go in, none come out), while the popular real
  claimers a few new-looking friends happen to reach share coupons too. A
  sink that starts sharing is withdrawn at its next receipt or report. Its
  value is that count, less one for each of its sharers that was shared to
  in the window (``sink_heard``: a hoarder's feeders hear from nobody, a
  quiet real claimer's established friends do); at ``sink_fresh`` or more it
  is published on the board (kind ``r``) until its oldest fresh sharer
  leaves the window.
- **a feeder**: a fresh account whose share (an attempt is enough), naming
  at most :data:`FEED_RECIPIENTS` accounts, named a sink; published (kind
  ``s``) for ``feeder_ms`` with the sink's value, so its next share (the
  cover chat) is judged too. And a sink's fresh sharers that reached it
  before it was one: each is published once, when the sink is known, for
  ``feeder_ms`` from then (see ``_feeders``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from riskservice.signals.base import claims_on_average, until_of
from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["FEED_RECIPIENTS", "SinkRecipients"]

#: The most recipients a share may name and still be evidence that its
#: (fresh) sharer feeds each of them. A hoarder's feeder names it alone or
#: with one real user as cover, a ring's member one to three of its sinks;
#: a real user's group share names four or more friends, and one of them
#: being a heavy claimer says nothing about the sharer. A quiet real claimer
#: (issue 10, quiet13) was made a sink by two fans who each pushed a coupon
#: to five friends at once, one of whom it was. Hiding feeders in groups of
#: four is no way out for a hoarder's owner: each such share credits its
#: sink claimed / delivered, a quarter when only the sink claims, so the
#: sink stays a heavy claimer (``sink_claim``, a half) only if its three
#: covers claim a third of what they get, more than real recipients do
#: (12 to 23 % of deliveries on the design worlds): claiming accounts of
#: the owner's, each reached by the same feeders again and again (the
#: blocks ``sink_feeder`` and ``ring_block`` look for). A feeder with one
#: share of three or fewer to it counts.
FEED_RECIPIENTS = 3


@dataclass(slots=True)
class Inflow:
    """A recipient's evidence: its sharers (-> the coupons of the shares that
    reached it while the sharer was fresh, naming at most
    :data:`FEED_RECIPIENTS` accounts, the last few; empty when none did) and
    credited receipts."""

    sharers: Recent[str, tuple[str, ...]]
    receipts: Recent[str, float]
    value: int = 0
    # Its fresh sharers already published as feeders (_feeders: once each),
    # kept like its sharers; made only for a sink.
    told: Recent[str, bool] | None = None


class SinkRecipients:
    """Sinks by recipient, and their feeders, published on a :class:`Board`."""

    def __init__(self, config: SignalConfig, board: Board) -> None:
        self.c, self.board, self.window = config, board, config.window_ms
        sharers, receipts, window = config.sharers_per_recipient, config.receipts_per_recipient, self.window
        self.inflow: Entities[str, Inflow] = Entities(
            config.entities, window, lambda: Inflow(Recent(sharers, window), Recent(receipts, window)))
        # account -> when it last received a share / first shared (in the window)
        self.received: Recent[str, int] = Recent(config.entities, window)
        self.first: Recent[str, int] = Recent(config.entities, window)
        self.since: int | None = None  # the first event seen
        # Whether a coupon turned out a crowd (set by the engine: fresh_bursts.py).
        self.crowded: Callable[[str, int], bool] = lambda coupon, now: False

    def fresh(self, user: str, now: int) -> bool:
        """Whether ``user`` is fresh at ``now`` (see the module)."""
        first = self.first.get(user, now)
        assert self.since is not None
        return (self.received.get(user, now) is None and first is not None
                and now - first <= self.c.fresh_ms and first - self.since >= self.c.fresh_after_ms)

    def share(self, share: Share) -> list[BoardWrite]:
        now, user = share.t_ms, share.user
        if self.since is None:
            self.since = now
        self.first.update(user, now, lambda t: now if t is None else t)
        if not share.recipients:
            return []
        # (A group share is no evidence of feeding: see FEED_RECIPIENTS.)
        fresh = len(share.recipients) <= FEED_RECIPIENTS and self.fresh(user, now)
        writes: list[BoardWrite] = []
        strongest = 0
        for r in share.recipients:
            got = self.inflow.touch(r, now)
            coupons = got.sharers.get(user, now) or ()
            if fresh and share.coupon not in coupons:
                coupons = (*coupons, share.coupon)[-4:]
            got.sharers.put(user, coupons, now)
            writes += self._judge(r, got, now)
            strongest = max(strongest, got.value)
            if share.allowed:
                self.received.put(r, now, now)
        if fresh and strongest:
            writes += self.board.set("s", user, strongest, now + self.c.feeder_ms, now)
            writes += self.board.clear("w", user, now)  # a feeder has no standing
        return writes

    def outcome(self, share: Share, outcome: Outcome) -> list[BoardWrite]:
        if not share.recipients or outcome.delivered <= 0:
            return []
        now, credit = outcome.t_ms, min(outcome.claimed / outcome.delivered, 1.0)
        writes: list[BoardWrite] = []
        for r in share.recipients:
            got = self.inflow.touch(r, now)
            got.receipts.put(share.decision_id, credit, now)
            writes += self._judge(r, got, now)
        return writes

    def _heard(self, sharers: list[str], now: int) -> int:
        """How many of ``sharers`` were shared to in the window (``sink_heard``).

        A hoarder is known to its feeders only: accounts registered for the
        purpose, that nobody shares to. A quiet real user who claims a lot
        is reached by quiet friends too (new-looking in the window), but
        also by friends who hear from others. Measured on twelve simulated
        worlds: each of the 14 real users flagged as sinks had one to six
        such sharers, none of the 50 hoarders and ring sinks had one (nor
        had a chat pusher and a flash-sale fan, still flagged). Each
        takes one piece of evidence away: a hoarder's owner who wanted to
        cancel a fresh feeder that way needs an account that was shared
        to, as costly as making the feeder itself not fresh (a share to it).
        """
        return sum(1 for s in sharers if self.received.get(s, now) is not None)

    def _judge(self, recipient: str, got: Inflow, now: int) -> list[BoardWrite]:
        c = self.c
        if len(got.sharers) < c.sink_fresh or len(got.receipts) < c.sink_receipts:
            # (Too few kept, let alone live, for a sink: most recipients.)
            got.value = 0
            return self.board.clear("r", recipient, now)
        # A fresh account that reached it only with a crowd's coupon (a flash
        # sale: 40 or more sharers of the coupon in a day) is explained by the
        # crowd: a real user whose first share in the window was the sale. One
        # that also reached it with another coupon is not (a hoarder's feeder
        # may well push a sale's coupon too, but shares to it again).
        live = [(sharer, t, coupons) for sharer, t, coupons in got.sharers.entries(now)
                if any(not self.crowded(c, now) for c in coupons)]
        fresh = [t for _, t, _ in live]
        # Fresh sharers that reached it with one and the same coupon, and
        # nothing else, are one piece of evidence: a coupon going round (a
        # sale in its first minutes, before it is a crowd; a popular coupon)
        # explains why several new-looking friends of one heavy claimer sent
        # it that coupon at once. A hoarder's feeders come one by one, each
        # with the coupons live at its own time.
        alone = {coupons[0] for _, _, coupons in live if len(coupons) == 1}
        evidence = len(alone) + sum(1 for _, _, coupons in live if len(coupons) > 1)
        credits = [v for _, v in got.receipts.items(now)]
        # A hoarder never shares: coupons go in and none come out. A popular
        # real claimer whom a few new friends happen to reach shares too.
        sharers = got.sharers.keys(now)
        sink = (self.first.get(recipient, now) is None
                and evidence >= c.sink_fresh and len(fresh) >= c.sink_fresh_share * len(sharers)
                and len(credits) >= c.sink_receipts and claims_on_average(credits, c.sink_claim))
        if sink and c.sink_heard:
            evidence -= self._heard(sharers, now)
            sink = evidence >= c.sink_fresh
        got.value = evidence if sink else 0
        if not sink:
            return self.board.clear("r", recipient, now)
        # Every share moves `until` a little: it is re-published only when
        # the value changes or half the window has gone (fewer versions).
        held = self.board.get("r", recipient, now)
        writes: list[BoardWrite] = []
        if held is None or held[0] != got.value or held[1] - now <= self.window // 2:
            writes = self.board.set("r", recipient, got.value, until_of(fresh, self.window, now), now)
        return writes + self._feeders(got, live, now)

    def _feeders(self, got: Inflow, live: list[tuple[str, int, tuple[str, ...]]], now: int) -> list[BoardWrite]:
        """Publish the fresh sharers that reached a sink before it was one.

        :meth:`share` flags a fresh account as a feeder only when its share
        names an already published sink. But the evidence that makes a sink
        (its fresh sharers' shares and their claimed reports) is those very
        shares, so the accounts that made it were never flagged: a rotating
        ring's first sink is made by three or four fresh members, who went on
        with cover shares to real users for days. Each fresh sharer of a
        sink is published once, when the sink is known (or when it joins a
        known sink's fresh sharers), with the sink's value, for
        ``feeder_ms`` from then, as if its share had named a published sink.
        It asks nothing new of an account (the fact that made it a feeder
        is the same, learnt later); a ring that wants its members' cover
        shares through must keep them off their sinks' fresh sharers (have
        them shared to, or let each sink be fed by old accounts), as before.

        Parameters
        ----------
        got
            The sink's inflow (its ``value``; ``told`` is updated).
        live
            ``(sharer, its last share to the sink, coupons while fresh)``
            of the sink's fresh sharers, as :meth:`_judge` found them.
        now
            Event time (ms).
        """
        if got.told is None:
            got.told = Recent(self.c.sharers_per_recipient, self.window)
        flags: list[tuple[str, str, int, int]] = []
        value, until = got.value, now + self.c.feeder_ms
        for sharer, _, _ in live:
            if got.told.get(sharer, now):
                continue  # published once for this sink: a later receipt does not prolong it
            got.told.put(sharer, True, now)
            held = self.board.get("s", sharer, now)
            if held is None or held[0] < value or held[1] < until:
                held = held or (0, 0)
                flags.append(("s", sharer, max(value, held[0]), max(until, held[1])))
        writes = self.board.set_many(flags, now)
        for _, sharer, _, _ in flags:
            writes += self.board.clear("w", sharer, now)  # a feeder has no standing
        return writes

