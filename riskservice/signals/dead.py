"""Sprayers whose recipients never claim.

An outcome report gives counts, not names: when a share's report says
nobody claimed, none of its recipients did. Per sharer, each recipient's
unclaimed receipts are counted (a recipient who claimed everything is
forgotten); a recipient with ``dead_receipts`` of them is dead. Sprayers
reuse a pool of fake accounts and hit each several times; real users' friends
claim now and then. The value is the sharer's number of dead recipients.
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
        self.window, self.dead = config.window_ms, config.dead_receipts
        cap = config.recipients_per_sharer
        self.sharers: Entities[str, Recent[str, int]] = Entities(config.entities, self.window,
                                                                lambda: Recent(cap, self.window))

    def share(self, share: Share) -> list[Reading]:
        return []

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        if not share.recipients or outcome.delivered <= 0 or 0 < outcome.claimed < outcome.delivered:
            return []  # nobody reached, or some claimed and we cannot tell who
        now = outcome.t_ms
        recipients = self.sharers.touch(share.user, now)
        for r in share.recipients:
            if outcome.claimed == 0:
                recipients.put(r, (recipients.get(r, now) or 0) + 1, now)
            else:
                recipients.pop(r)
        touches = [t for _, t, n in recipients.entries(now) if n >= self.dead]
        return [Reading(share.user, len(touches), until_of(touches, self.window, now))]
