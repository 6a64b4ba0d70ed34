"""One account pushing one coupon again and again, hour after hour.

Real users share a coupon once, sometimes twice (to another chat), and a
fan who likes it may push it to many chats at once; accounts paid to push a
coupon share it dozens of times over days at a steady rate. So shares are
counted in *sittings*: a share of the coupon more than ``repeat_gap_ms``
(an hour) after the sharer's previous share of it starts a new sitting. The
value is the largest number of sittings of one coupon by the sharer in the
window: pushing a coupon to ten chats in one evening is one sitting, a
steady pusher's day is a dozen.
"""

from __future__ import annotations

from bisect import insort

from riskservice.signals.base import Reading
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["CouponRepeat"]


class CouponRepeat:
    """Shares per (sharer, coupon) in ``repeat_window_ms``; the sharer's largest."""

    code = "coupon_repeat"
    per_device = False

    def __init__(self, config: SignalConfig) -> None:
        self.window, self.gap = config.repeat_window_ms, config.repeat_gap_ms
        self.cap = config.shares_per_coupon_repeat
        coupons = config.coupons_per_user
        self.users: Entities[str, Recent[str, list[int]]] = Entities(config.entities, self.window,
                                                                      lambda: Recent(coupons, self.window))

    def share(self, share: Share) -> list[Reading]:
        now = share.t_ms
        coupons = self.users.touch(share.user, now)
        times = [t for t in coupons.get(share.coupon, now) or [] if now - t < self.window]
        # Kept in time order, not arrival order: on Redis Cluster a shard read
        # at its next sweep brings entries up to a second late, after later ones
        # of other shards (docs/signals.md, "On Redis Cluster").
        insort(times, now)
        coupons.put(share.coupon, times[-self.cap:], now)
        best, until = 0, now + self.window
        for _, _, kept in coupons.entries(now):
            inside = [t for t in kept if now - t < self.window]
            sittings = sum(1 for i, t in enumerate(inside) if i == 0 or t - inside[i - 1] > self.gap)
            if sittings > best:
                best, until = sittings, inside[0] + self.window
        return [Reading(share.user, best, until)]

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []
