"""Sharers who earned a waiver of the fan-out rule.

The customer's fan-out rule (more than 10 recipients in one share asks for
an SMS code, after WeChat's coupon-sharing guide) keeps hitting the people
who share to their chat groups every week: a group admin's shares go to the
same 12-20 members, every one of them. What sets such a sharer apart from a
sprayer is what its recipients do: some of them claim, as real people do,
share after share. So the consumer counts, per sharer, its *organic* group
shares: outcome reports of shares delivered to at least ``waiver_delivered``
people of whom at least one and at most ``waiver_claim`` of them claimed.
It publishes a waiver (board kind ``w``, value: that count) while

- the sharer has at least ``waiver_floor`` organic group shares in the window
  and they are at least half of its reported group shares (a sprayer whose
  fake recipients never claim, or a threshold sprayer with one success in
  ten, never gets there; nor does a ring whose sinks claim everything);
- it is not on the board as a feeder or a fresh burst's member, and none of
  its signals reached the level of the shipped default threshold
  (:data:`~riskservice.signals.catalog.STANDING_LOST`).

A sharer earns it only with shares that were delivered: under the fan-out
rule itself, shares it passed SMS challenges for. The policy decides how many
organic group shares waive the rule (``fan_out.waiver_shares``, 1 by
default: a group admin is asked once, at its first send to the group) and
whether the waiver applies at all (``fan_out.waiver``); a waived finding is
reported in shadow. There is no age condition: the outcome report of the
first send arrives minutes after it, and the admin's next send may come an
hour later; a rule needing days of standing asked every new admin again.

The waiver is judged when a report arrives (the only evidence that moves
it) and withdrawn at once when the sharer is flagged (engine.py).
"""

from __future__ import annotations

from collections.abc import Callable

from riskservice.signals.base import until_of
from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["FanOutWaiver"]


class FanOutWaiver:
    """Per sharer: its reported group shares, organic or not."""

    def __init__(self, config: SignalConfig, board: Board, flagged: Callable[[str, int], bool]) -> None:
        self.c, self.board, self.flagged, self.window = config, board, flagged, config.window_ms
        cap, window = config.waiver_reports, self.window
        # sharer -> decision id -> organic (True) or not
        self.reports: Entities[str, Recent[str, bool]] = Entities(config.entities, window,
                                                                  lambda: Recent(cap, window))

    def outcome(self, share: Share, outcome: Outcome) -> list[BoardWrite]:
        c = self.c
        if outcome.delivered < c.waiver_delivered:
            return []
        now, user = outcome.t_ms, share.user
        organic = 0 < outcome.claimed <= c.waiver_claim * outcome.delivered
        reports = self.reports.touch(user, now)
        reports.put(share.decision_id, organic, now)
        return self.judge(user, now)

    def judge(self, user: str, now: int) -> list[BoardWrite]:
        """Publish or withdraw ``user``'s waiver."""
        c = self.c
        reports = self.reports.peek(user, now)
        good = [t for _, t, organic in reports.entries(now) if organic] if reports else []
        earned = (len(good) >= c.waiver_floor and reports is not None and 2 * len(good) >= len(reports.keys(now))
                  and not self.flagged(user, now))
        if not earned:
            return self.board.clear("w", user, now)
        return self.board.set("w", user, len(good), until_of(good, self.window, now), now)
