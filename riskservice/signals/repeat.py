"""One account pushing one coupon again and again, hour after hour.

Real users share a coupon once, sometimes twice (to another chat), and a
fan who likes it may push it to many chats at once; accounts paid to push a
coupon share it dozens of times over days at a steady rate. So shares are
counted in *sittings*: a share of the coupon more than ``repeat_gap_ms``
(an hour) after the sharer's previous share of it starts a new sitting. The
value is the largest number of sittings of one coupon by the sharer in the
window: pushing a coupon to ten chats in one evening is one sitting, a
steady pusher's day is a dozen.

A sitting is also at most ``repeat_sitting_ms`` long (from its first share):
a pusher who never lets an hour pass between two shares of the coupon was
one sitting for days (steady pushers of the design workloads passed eight
to twelve shares in one such "sitting"), while a fan pushing a coupon to
its chats does so within minutes. To evade it a pusher must pause an hour
between pushes and still stay under four pushes in three days.

A crew. Steady pushers come in crews of a few accounts pushing the same
coupon (a fan pushes a coupon it likes alone). On a coupon that
``repeat_crew`` other accounts pushed in ``repeat_crew_sittings`` sittings
or more in the window (pushers), an account's second sitting and later count
one more: a crew's members are refused a sitting earlier. Not on a coupon
that is a crowd (``crowd_sharers`` distinct sharers within a day): among a
popular coupon's hundreds of fans, a few share it on three days by chance.
An account that posted to a group (a share naming more than
``circle_max_recipients``) in the window is neither: a group admin pushes
this week's coupon to its group three days running, and a crew riding the
same live coupon made two admins lose their fan-out waiver on the design
workloads (the customer's fan-out rule asks an SMS code of every group post,
so a crew posting to groups to pass as admins pays one per post). To evade
it a crew must push different coupons (each then judged alone), keep all
but one of its members under three pushes of the coupon, or post to groups.
"""

from __future__ import annotations

from bisect import insort

from riskservice.signals.base import Reading
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["CouponRepeat"]


class CouponRepeat:
    """Shares per (sharer, coupon) in ``repeat_window_ms``; the sharer's largest."""

    code = "coupon_repeat"
    per_device = False

    def __init__(self, config: SignalConfig) -> None:
        self.window, self.gap = config.repeat_window_ms, config.repeat_gap_ms
        self.span = config.repeat_sitting_ms
        self.cap = config.shares_per_coupon_repeat
        coupons = config.coupons_per_user
        self.users: Entities[str, Recent[str, list[int]]] = Entities(config.entities, self.window,
                                                                      lambda: Recent(coupons, self.window))
        self.crew, self.crew_sittings, self.crowd = (config.repeat_crew, config.repeat_crew_sittings,
                                                     config.crowd_sharers)
        # coupon -> the accounts that pushed it in `crew_sittings` sittings or more
        self.pushers: Entities[str, Recent[str, bool]] = Entities(
            config.coupons, self.window, lambda: Recent(config.sharers_per_burst, self.window))
        # accounts that posted to a group in the window (no crew members)
        self.group_max = config.circle_max_recipients
        self.posters: Recent[str, bool] = Recent(config.entities, self.window)
        # coupon -> its distinct sharers of the last day, up to the crowd size
        self.day: Entities[str, Recent[str, None]] = Entities(config.coupons, DAY_MS,
                                                             lambda: Recent(self.crowd, DAY_MS))

    def share(self, share: Share) -> list[Reading]:
        now, user, coupon = share.t_ms, share.user, share.coupon
        coupons = self.users.touch(user, now)
        times = [t for t in coupons.get(coupon, now) or [] if now - t < self.window]
        # Kept in time order, not arrival order: on Redis Cluster a shard read
        # at its next sweep brings entries up to a second late, after later ones
        # of other shards (docs/signals.md, "On Redis Cluster").
        insort(times, now)
        coupons.put(coupon, times[-self.cap:], now)
        touched = [user]
        if self.crew > 0 and len(share.recipients) > self.group_max:
            self.posters.put(user, True, now)
        if self.crew > 0:
            day = self.day.touch(coupon, now)
            was_crowd = len(day) >= self.crowd
            day.put(user, None, now)
            pushers = self.pushers.peek(coupon, now)
            if len(day) >= self.crowd and not was_crowd and pushers is not None:
                touched += [u for u in pushers.keys(now) if u != user]  # their crew no longer counts
            if self.sittings(times, now) >= self.crew_sittings and self.posters.get(user, now) is None:
                pushers = self.pushers.touch(coupon, now)
                if pushers.get(user, now) is None:
                    touched += [u for u in pushers.keys(now) if u not in touched]  # their crew grew
                pushers.put(user, True, now)
        return [self.reading(u, now) for u in touched]

    def sittings(self, times: list[int], now: int) -> int:
        """Sittings among ``times`` (sorted) inside the window at ``now``."""
        count, start, prev = 0, 0, None
        for t in times:
            if now - t >= self.window:
                continue
            if prev is None or t - prev > self.gap or (self.span > 0 and t - start > self.span):
                count, start = count + 1, t
            prev = t
        return count

    def reading(self, user: str, now: int) -> Reading:
        """``user``'s most sittings of one coupon (a crew's coupon counting one more) at ``now``."""
        best, until = 0, now + self.window
        coupons = self.users.peek(user, now)
        for coupon, _, kept in coupons.entries(now) if coupons is not None else ():
            inside = [t for t in kept if now - t < self.window]
            if not inside:
                continue
            sittings, ends = self.sittings(inside, now), inside[0] + self.window
            if sittings >= 2 and self.crew > 0 and self.posters.get(user, now) is None:
                crew = self._crew_until(coupon, user, now)
                if crew is not None:
                    sittings, ends = sittings + 1, min(ends, crew)
            if sittings > best:
                best, until = sittings, ends
        return Reading(user, best, until)

    def _crew_until(self, coupon: str, user: str, now: int) -> int | None:
        """When ``coupon``'s crew (``repeat_crew`` pushers besides ``user``)
        leaves the window; None when it has none, or is a crowd's coupon."""
        day = self.day.peek(coupon, now)
        pushers = self.pushers.peek(coupon, now)
        if pushers is None or (day is not None and len(day) >= self.crowd):
            return None
        seen = sorted((t for u, t, _ in pushers.entries(now)
                       if u != user and self.posters.get(u, now) is None), reverse=True)
        if len(seen) < self.crew:
            return None
        return seen[self.crew - 1] + self.window

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []
