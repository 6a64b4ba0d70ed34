"""Sprayers whose recipients never claim.

An outcome report gives counts, not names: when a share's report says
nobody claimed, none of its recipients did. Per sharer, each recipient's
unclaimed receipts are counted (a recipient who claimed everything is
forgotten); a recipient with ``dead_receipts`` of them is dead. A report
where some but not all claimed cannot say who did, but it says that
``claimed / delivered`` of its recipients did on average: each recipient's
count goes down by that much. A chat group whose members claim now and then
(a group admin's) stays alive through its occasional unclaimed share, while
a sprayer's fake recipients, who never claim, are dead after two. The value
is the sharer's number of dead recipients, once at least ``dead_reports``
of its reports in the window said nobody claimed (0 before).

Why the second condition: one unclaimed group share marks every member at
once, so a real user who sent two coupons to the same three or four friends,
who claim now and then, had three "dead" recipients after two reports (the
organic refusals of this signal were mostly that). A sprayer or a spammer
makes unclaimed reports far faster than it makes dead recipients, so it
loses nothing to the wait; the condition is on separate reports because a
single share, however many it names, is one observation of the sharer.

And a third: the reports that said nobody claimed must be at least
``dead_share`` (half) of the sharer's reports in the window (its last
``dead_memory``). A group admin sends every coupon to the same 12-20
members, of whom one or two claim each time: the averaged credit of a
claimed report (1/15 each) is far less than the whole receipt an unclaimed
one adds, so the few unclaimed sends among twenty made the whole group
"dead" (most of this signal's organic refusals on the look-alike profiles),
although four in five of its sends were claimed. A sprayer's, a spammer's or
a threshold sprayer's reports are mostly unclaimed (seven in ten to all of
them): to stay under the half it would need as many claimed shares as it
sprays.

And a receipt its recipient passed on is not unclaimed for it
(``dead_passed_on``): a recipient who shared the same coupon at or after the
sharer sent it acted on it. When the report came first (a replay reports a
small share at once, and a reshare may come hours later) the receipt is
taken back then, and the sharer's value published again. A flash-sale fan
sends the sale's coupon to a few friends who pass it on to theirs and claim
later sales now and then; counting the passed-on receipts made such a
friend "dead" after the fan's next unclaimed share (an organic refusal of
this signal on the design seeds, dead10). A sprayer whose fake recipients
want the same would need each of them to reshare every coupon it gets but
one, a share per receipt, each from a session and a device of the fake's
own (or from few devices, which the device signals see), and each
reshare's own recipients, if fakes too, make the fake a dead-recipient
sharer in turn.

And each account that shared to the sharer in the window offsets one of
its dead recipients (``dead_offset``): the value is the dead recipients
less those senders. A busy real user whose friends seldom claim makes dead
recipients slowly over weeks, and is shared to by friends all the while:
the real sharers this signal refused on the design workloads (3 to 34
shares to 10 to 92 people over 5 to 23 days before their first refusal, 0
to 16 % of deliveries claimed) had 5 to 43 senders for 3 to 6 dead
recipients. The sprayers it catches had none (a
throwaway account that only sends), and a sprayer wanting the same needs a
distinct account sharing to it for every dead recipient it hides, each
share judged by the rules in turn, so the cost grows with the spraying.
What it gives up: a real user who spams friends (the simulator's
``low_claim``) is offset by its friends too.

So a second measure, of claims that did not come (``claim_shortfall``):
each recipient's rate of claiming what *other* sharers send it (each
receipt credited claimed / delivered of its report, as above), once it has
``claim_known`` receipts from others in the window, says how many claims a
report to it should bring. Per sharer, over its last ``dead_memory``
reports, the claims expected from its recipients that have such a rate, and
the claims those recipients' reports brought. While the claims brought are
at most ``claim_shortfall`` (a quarter) of those expected, the value is at
least the claims missing (expected less brought, rounded down), not
offset by the senders, once ``dead_reports`` reports expected a claim (a
report is one observation, however many it names): a spammer with
many friends, who shares to it, whose friends claim other sharers' coupons
and not its own. A real user whose friends seldom claim anything expects
few claims from them (the real sharers a 30-day success rate would refuse,
10 or more reports a month with a claim in under a fifth of them, expected
0.2 to 2.6 claims at 10 000 users), and a real sharer's claims follow its
friends' habits: no organic sharer on the design workloads brought under
0.37 of what its recipients led to expect once 3 were expected, the
spammers 0 to 0.25. A spammer wanting to pass must be claimed a quarter as
often as its friends claim others' coupons (send coupons they want), or
send to accounts nobody else shares to or that claim from nobody (dead
recipients, above); lowering its friends' rates takes accounts of its own
sending them unclaimed coupons, each of which then falls short in turn.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

Senders = Callable[[str, int], list[str]]

__all__ = ["DeadRecipients"]

# Per recipient and coupon, the unclaimed receipts kept to be taken back if it
# passes the coupon on (the latest): a bound on the memory of a sprayer that
# sends one coupon to the same account again and again, whose receipts past
# this many stay counted.
RECEIPTS_PER_COUPON = 16


class Heard:
    """A recipient's credited receipts by sharer: the last ``cap`` sharers,
    each kept ``window_ms`` after its last receipt, with their sums kept as
    they change (a report asks for each of its recipients' rates from other
    sharers: one subtraction, not a sum over its sharers).

    >>> h = Heard(cap=2, window_ms=100)
    >>> h.add("a", 1.0, now=0); h.add("b", 0.5, now=10); h.add("a", 0.0, now=20)
    >>> h.elsewhere("a", now=30), h.elsewhere("c", now=30)
    ((0.5, 1), (1.5, 3))
    >>> h.add("c", 1.0, now=40)  # "b" goes: the least recently heard of three
    >>> h.elsewhere("x", now=40), h.elsewhere("x", now=125)
    ((2.0, 3), (1.0, 1))
    """

    __slots__ = ("by", "cap", "credit", "receipts", "window_ms")

    def __init__(self, cap: int, window_ms: int) -> None:
        self.cap, self.window_ms = cap, window_ms
        # sharer -> (last receipt ms, credit, receipts), least recently heard first
        self.by: OrderedDict[str, tuple[int, float, int]] = OrderedDict()
        self.credit, self.receipts = 0.0, 0

    def elsewhere(self, sharer: str, now: int) -> tuple[float, int]:
        """Credit and receipts from other sharers than ``sharer`` in the window."""
        self.expire(now)
        own = self.by.get(sharer)
        return (self.credit, self.receipts) if own is None else (self.credit - own[1], self.receipts - own[2])

    def add(self, sharer: str, credit: float, now: int) -> None:
        """A receipt from ``sharer`` credited ``credit``."""
        self.expire(now)
        was = self.by.pop(sharer, None)
        self.by[sharer] = (now, credit, 1) if was is None else (now, was[1] + credit, was[2] + 1)
        self.credit += credit
        self.receipts += 1
        if len(self.by) > self.cap:
            self.drop(next(iter(self.by)))

    def expire(self, now: int) -> None:
        """Forget the sharers the window has left behind (oldest first)."""
        while self.by:
            sharer, (t, _, _) = next(iter(self.by.items()))
            if now - t < self.window_ms:
                return
            self.drop(sharer)

    def drop(self, sharer: str) -> None:
        """Forget ``sharer``'s receipts, and take them off the sums."""
        _, credit, receipts = self.by.pop(sharer)
        if self.by:
            self.credit -= credit
            self.receipts -= receipts
        else:
            # (exactly nothing, not what float subtractions leave of it)
            self.credit, self.receipts = 0.0, 0


class Report(NamedTuple):
    """What one of a sharer's reports said: whether nobody claimed, and the
    claims its recipients' rates from other sharers expected and those it
    brought (both over the recipients that have such a rate)."""

    nobody: bool
    expected: float
    brought: float


class DeadRecipients:
    """Per sharer: recipients and their unclaimed receipts."""

    code = "dead_recipients"
    per_device = False

    def __init__(self, config: SignalConfig, senders: Senders | None = None) -> None:
        self.window, self.dead, self.reports = config.window_ms, config.dead_receipts, config.dead_reports
        # who shared to an account in the window (the engine's SinkFeeder.senders)
        self.senders = senders if config.dead_offset else None
        self.share_unclaimed = config.dead_share
        cap = config.recipients_per_sharer
        self.sharers: Entities[str, Recent[str, float]] = Entities(config.entities, self.window,
                                                                  lambda: Recent(cap, self.window))
        # sharer -> its last reports: decision id -> what it said
        memory = config.dead_memory
        self.unclaimed: Entities[str, Recent[str, Report]] = Entities(
            config.entities, self.window, lambda: Recent(memory, self.window))
        self.shortfall, self.known = config.claim_shortfall, config.claim_known
        # recipient -> its credited receipts by sharer
        per = config.sharers_per_recipient
        self.claims: Entities[str, Heard] = Entities(config.entities, self.window, lambda: Heard(per, self.window))
        self.passed_on = config.dead_passed_on
        # user -> coupons it shared: coupon -> time of its last share of it
        coupons = config.coupons_per_user
        self.shared: Entities[str, Recent[str, int]] = Entities(
            config.entities, self.window, lambda: Recent(coupons, self.window))
        # recipient -> its counted unclaimed receipts: coupon -> [(sharer, sent at)]
        receipts = config.receipts_per_recipient
        self.heard: Entities[str, Recent[str, list[tuple[str, int]]]] = Entities(
            config.entities, self.window, lambda: Recent(receipts, self.window))

    def share(self, share: Share) -> list[Reading]:
        return self.passed_coupon(share) if self.passed_on else []

    def passed_coupon(self, share: Share) -> list[Reading]:
        """A recipient sharing a coupon takes back the unclaimed receipts of
        it that the reports came with first."""
        now = share.t_ms
        # an attempt counts too: passing a coupon on is the recipient's own act either way
        self.shared.touch(share.user, now).put(share.coupon, now, now)
        heard = self.heard.peek(share.user, now)
        counted = None if heard is None else heard.pop(share.coupon)
        readings = []
        for sharer in sorted({s for s, sent in counted or () if sent <= now}):
            recipients = self.sharers.peek(sharer, now)
            if recipients is None:
                continue
            # the reports came first (a replay reports a small share at once):
            # take back each receipt of this coupon they counted as unclaimed
            times = sum(1 for s, sent in counted or () if s == sharer and sent <= now)
            left = (recipients.get(share.user, now) or 0.0) - times
            if left > 0:
                recipients.put(share.user, left, now)
            else:
                recipients.pop(share.user)
            readings.append(self.reading(sharer, recipients, now))
        return readings

    def passed(self, recipient: str, share: Share, now: int) -> bool:
        """Whether ``recipient`` shared ``share``'s coupon at or after ``share``."""
        if not self.passed_on:
            return False
        coupons = self.shared.peek(recipient, now)
        last = None if coupons is None else coupons.get(share.coupon, now)
        return last is not None and last >= share.t_ms

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        if not share.recipients or outcome.delivered <= 0:
            return []
        now = outcome.t_ms
        recipients = self.sharers.touch(share.user, now)
        credit = min(outcome.claimed / outcome.delivered, 1.0)
        expected = brought = 0.0
        for r in share.recipients:
            if self.passed(r, share, now):
                # it passed this coupon on already: neither unclaimed nor a claim
                continue
            rate = self.rate_elsewhere(r, share.user, now)
            if rate is not None:
                expected += rate
                brought += credit
            self.heard_claims(r, share.user, credit, now)
            if outcome.claimed == 0:
                recipients.put(r, (recipients.get(r, now) or 0) + 1, now)
                if self.passed_on:
                    # kept to be taken back if it passes the coupon on later
                    self.heard.touch(r, now).update(
                        share.coupon, now,
                        lambda was: [*(was or ())[1 - RECEIPTS_PER_COUPON:], (share.user, share.t_ms)])
            elif credit >= 1.0:
                recipients.pop(r)
            else:
                # some claimed, we cannot tell who: each did on average `credit`
                left = (recipients.get(r, now) or 0.0) - credit
                if left > 0:
                    recipients.put(r, left, now)
                else:
                    recipients.pop(r)
        self.unclaimed.touch(share.user, now).put(
            share.decision_id, Report(outcome.claimed == 0, expected, brought), now)
        return [self.reading(share.user, recipients, now)]

    def rate_elsewhere(self, recipient: str, sharer: str, now: int) -> float | None:
        """The part of what other sharers than ``sharer`` sent ``recipient``
        that it claimed (credits over receipts), None under ``claim_known``
        receipts (or with the measure off)."""
        if self.shortfall <= 0:
            return None
        heard = self.claims.peek(recipient, now)
        if heard is None:
            return None
        credit, receipts = heard.elsewhere(sharer, now)
        return credit / receipts if receipts >= self.known else None

    def heard_claims(self, recipient: str, sharer: str, credit: float, now: int) -> None:
        """Count a receipt of ``recipient`` from ``sharer`` credited ``credit``."""
        if self.shortfall > 0:
            self.claims.touch(recipient, now).add(sharer, credit, now)

    def reading(self, user: str, recipients: Recent[str, float], now: int) -> Reading:
        """``user``'s number of dead recipients (0 without enough unclaimed
        reports, less its senders), or its missing claims when more."""
        reports = self.unclaimed.peek(user, now)
        said = list(reports.entries(now)) if reports is not None else []
        touches = [t for _, t, n in recipients.entries(now) if n >= self.dead]
        if not self.enough_unclaimed([report.nobody for _, _, report in said]):
            touches = []
        heard = len(self.senders(user, now)) if self.senders is not None else 0
        dead = Reading(user, max(len(touches) - heard, 0), until_of(touches, self.window, now))
        missing = self.missing_claims(said)
        if missing <= dead.value:
            return dead
        return Reading(user, missing, until_of([t for _, t, _ in said], self.window, now))

    def enough_unclaimed(self, nobody: list[bool]) -> bool:
        """At least ``dead_reports`` of the sharer's reports (``nobody``: each
        said nobody claimed) said nobody claimed, and they are at least
        ``dead_share`` of them."""
        unclaimed = sum(nobody)
        return unclaimed >= self.reports and unclaimed >= self.share_unclaimed * len(nobody)

    def missing_claims(self, said: list[tuple[str, int, Report]]) -> int:
        """The claims expected from the sharer's reports ``said`` and not
        brought (rounded down), while those brought are at most
        ``claim_shortfall`` of those expected and ``dead_reports`` of the
        reports expected some (else 0)."""
        # A report is one observation however many it names: a coupon nobody
        # in a group of twelve wanted is one unwanted coupon, not twelve.
        if sum(1 for _, _, report in said if report.expected > 0) < self.reports:
            return 0
        expected = sum(report.expected for _, _, report in said)
        brought = sum(report.brought for _, _, report in said)
        if brought > self.shortfall * expected:
            return 0
        # (a hair over, for sums of thirds and sevenths that fall just short of a whole)
        return math.floor(expected - brought + 1e-9)
