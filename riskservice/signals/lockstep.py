"""Accounts that keep sharing together: the same coupon in the same burst,
again and again with the same partners.

A burst is the shares of one coupon within ``burst_ms`` of each other. Two
accounts meeting in one burst is nothing: a flash sale brings hundreds of
real sharers together once. Meeting again on another coupon is: per account,
its partners and on how many distinct coupons it met each; the value is the
number of partners met on at least ``lockstep_coupons`` coupons, or met once
when that partner is a *core* member (it met ``lockstep_core`` partners on
several coupons): so when the first few of a group meet again, the rest of
the group is flagged before its own next share. Work per share is bounded by
the sharers a burst keeps (``sharers_per_burst``) and the partners each
account keeps (``partners_per_user``).
"""

from __future__ import annotations

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["Lockstep"]

# Per partner: (distinct coupons met on, the last of them).
Met = tuple[int, str]


class Lockstep:
    """Partners met in bursts of the same coupons, per account."""

    code = "lockstep"
    per_device = False

    def __init__(self, config: SignalConfig) -> None:
        self.window, self.burst, self.needed = config.window_ms, config.burst_ms, config.lockstep_coupons
        self.core = config.lockstep_core
        self.per_burst = config.sharers_per_burst
        partners = config.partners_per_user
        # coupon -> recent sharers of it, (ms, user), oldest first
        self.bursts: Entities[str, list[tuple[int, str]]] = Entities(config.coupons, self.burst, list)
        self.partners: Entities[str, Recent[str, Met]] = Entities(config.entities, self.window,
                                                                 lambda: Recent(partners, self.window))

    def share(self, share: Share) -> list[Reading]:
        now, user, coupon = share.t_ms, share.user, share.coupon
        recent = self.bursts.touch(coupon, now)
        recent[:] = [(t, u) for t, u in recent if now - t < self.burst][-self.per_burst:]
        met = {u for _, u in recent if u != user}
        if all(u != user for _, u in recent):
            recent.append((now, user))
        touched = {user, *met}
        cores = {u: self._core(u, now) for u in touched}
        for partner in met:
            self._meet(user, partner, coupon, now)
            self._meet(partner, user, coupon, now)
        # An account that became (or stopped being) a core member changes the
        # value of everyone it met: they are re-read too.
        for u in list(touched):
            if self._core(u, now) != cores[u]:
                partners = self.partners.peek(u, now)
                touched.update(partners.keys(now) if partners else ())
        return [self._reading(u, now) for u in sorted(touched)]

    def _meet(self, user: str, partner: str, coupon: str, now: int) -> None:
        partners = self.partners.touch(user, now)
        count, last = partners.get(partner, now) or (0, "")
        partners.put(partner, (count + (coupon != last), coupon), now)

    def _core(self, user: str, now: int) -> bool:
        """Met at least ``lockstep_core`` partners on several coupons each."""
        partners = self.partners.peek(user, now)
        if partners is None:
            return False
        return sum(1 for _, (count, _) in partners.items(now) if count >= self.needed) >= self.core

    def _reading(self, user: str, now: int) -> Reading:
        # Partners met on several coupons, and partners met once who are core
        # members: a group's later members are flagged as soon as its first
        # few meet again, not only from its third burst on.
        partners = self.partners.peek(user, now)
        touches = [t for p, t, (count, _) in partners.entries(now)
                   if count >= self.needed or self._core(p, now)] if partners else []
        return Reading(user, len(touches), until_of(touches, self.window, now))

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []
