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
"""

from __future__ import annotations

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["DeadRecipients"]


class DeadRecipients:
    """Per sharer: recipients and their unclaimed receipts."""

    code = "dead_recipients"
    per_device = False

    def __init__(self, config: SignalConfig) -> None:
        self.window, self.dead, self.reports = config.window_ms, config.dead_receipts, config.dead_reports
        self.share_unclaimed = config.dead_share
        cap = config.recipients_per_sharer
        self.sharers: Entities[str, Recent[str, float]] = Entities(config.entities, self.window,
                                                                  lambda: Recent(cap, self.window))
        # sharer -> its last reports: decision id -> whether nobody claimed
        memory = config.dead_memory
        self.unclaimed: Entities[str, Recent[str, bool]] = Entities(
            config.entities, self.window, lambda: Recent(memory, self.window))

    def share(self, share: Share) -> list[Reading]:
        return []

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        if not share.recipients or outcome.delivered <= 0:
            return []
        now = outcome.t_ms
        recipients = self.sharers.touch(share.user, now)
        credit = min(outcome.claimed / outcome.delivered, 1.0)
        self.unclaimed.touch(share.user, now).put(share.decision_id, outcome.claimed == 0, now)
        for r in share.recipients:
            if outcome.claimed == 0:
                recipients.put(r, (recipients.get(r, now) or 0) + 1, now)
            elif credit >= 1.0:
                recipients.pop(r)
            else:
                # some claimed, we cannot tell who: each did on average `credit`
                left = (recipients.get(r, now) or 0.0) - credit
                if left > 0:
                    recipients.put(r, left, now)
                else:
                    recipients.pop(r)
        touches = [t for _, t, n in recipients.entries(now) if n >= self.dead]
        if not self.enough_unclaimed(share.user, now):
            touches = []
        return [Reading(share.user, len(touches), until_of(touches, self.window, now))]

    def enough_unclaimed(self, user: str, now: int) -> bool:
        """At least ``dead_reports`` of ``user``'s reports said nobody claimed,
        and they are at least ``dead_share`` of its reports."""
        reports = self.unclaimed.peek(user, now)
        if reports is None:
            return False
        flags = [nobody for _, nobody in reports.items(now)]
        unclaimed = sum(flags)
        return unclaimed >= self.reports and unclaimed >= self.share_unclaimed * len(flags)
