"""A burst of fresh accounts on one coupon: a lockstep group's first burst.

``lockstep`` needs the same accounts to meet again on another coupon, so a
group's first burst, the camouflage its members share before the second,
and most of the second burst go through. The first burst already differs
from a flash sale in who joins it: a flash sale brings established users
together (they received shares before, they were seen before), a lockstep
group's first burst is accounts made for it. Per coupon, the consumer keeps
the sharers of its current burst (shares within ``burst_ms``) and whether
each was *fresh* (:meth:`SinkRecipients.fresh`: received nothing in the
window, first shared at most ``fresh_ms`` ago). When a burst holds at least
``fresh_burst`` fresh accounts who are at least half of its sharers, on a
coupon that is not a crowd (``crowd_sharers`` distinct sharers in a day),
every fresh account in it is published on the board (kind ``g``, value: the
burst's fresh accounts) for ``window_ms``: their next shares are judged by
the ``fresh_burst`` rule. A flash sale's first minutes can look like that
(its first few fans may be new); when the coupon turns out a crowd, the
flags it gave are withdrawn, as ``lockstep`` forgets meetings made on a
coupon before it turned out one.

A coupon's launch looks like that too: when a merchant issues a coupon, its
first sharers come together within minutes, and a real user who shares once
a month (nothing received in the window, first share in it just now) is
fresh. What a launch has and a group's burst has not is a cascade: the
fresh sharers' friends pass the coupon on. So per coupon the consumer keeps,
for a day, the recipients of its fresh sharers' allowed shares (at most
``launch_audience``), and which fresh sharers had one of them share the
coupon afterwards. Once ``launch_spread`` (2) fresh sharers did, the coupon
is a launch for the day: the flags its bursts gave are withdrawn and its
bursts flag nobody more. One is not enough: a group's target may hear of a
popular coupon elsewhere and share it; a group's shares reaching two
accounts that pass its coupon on is a cascade the group did not make.
"""

from __future__ import annotations

from collections.abc import Callable

from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Share

__all__ = ["FreshBursts"]


class FreshBursts:
    """Per coupon: its current burst's sharers, fresh or not."""

    def __init__(self, config: SignalConfig, board: Board, fresh: Callable[[str, int], bool]) -> None:
        self.c, self.board, self.fresh = config, board, fresh
        # coupon -> (ms, user, fresh) of its recent shares, oldest first
        self.bursts: Entities[str, list[tuple[int, str, bool]]] = Entities(config.coupons, config.burst_ms, list)
        self.crowds: Entities[str, Recent[str, None]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(config.crowd_sharers, DAY_MS))
        # coupons that turned out crowds, remembered as long as evidence counts
        self.crowds_seen: Recent[str, bool] = Recent(config.coupons, config.window_ms)
        # coupon -> the accounts its bursts flagged (withdrawn if it turns out a crowd or a launch)
        self.granted: Entities[str, set[str]] = Entities(config.coupons, DAY_MS, set)
        # coupon -> recipients of its fresh sharers' allowed shares -> the sharer
        self.audience: Entities[str, Recent[str, str]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(config.launch_audience, DAY_MS))
        # coupon -> fresh sharers one of whose recipients shared it afterwards
        # (at most `launch_spread` kept: all the rule asks is whether there are that many)
        self.spread: Entities[str, set[str]] = Entities(config.coupons, DAY_MS, set)

    def share(self, share: Share) -> list[BoardWrite]:
        c, now, user = self.c, share.t_ms, share.user
        day = self.crowds.touch(share.coupon, now)
        day.put(user, None, now)
        recent = self.bursts.touch(share.coupon, now)
        recent[:] = [x for x in recent if now - x[0] < c.burst_ms and x[1] != user][-c.sharers_per_burst:]
        fresh_now = self.fresh(user, now)
        recent.append((now, user, fresh_now))
        launched = self._spread(share, fresh_now)
        if len(day) >= c.crowd_sharers or launched:
            # A crowd (a flash sale or a popular coupon) or a launch. Flags it gave go.
            if len(day) >= c.crowd_sharers:
                self.crowds_seen.put(share.coupon, True, now)
            granted = self.granted.peek(share.coupon, now)
            withdrawn = [w for member in sorted(granted or ()) for w in self.board.clear("g", member, now)]
            if granted:
                granted.clear()
            return withdrawn
        fresh = [u for _, u, f in recent if f]
        if len(fresh) < c.fresh_burst or 2 * len(fresh) < len(recent):
            return []
        writes: list[BoardWrite] = []
        granted = self.granted.touch(share.coupon, now)
        for member in fresh:
            granted.add(member)
            held = self.board.get("g", member, now)
            if held is None or held[0] < len(fresh):
                writes += self.board.set("g", member, len(fresh), now + c.window_ms, now)
        return writes

    def _spread(self, share: Share, fresh: bool) -> bool:
        """Note who passed ``share``'s coupon on; whether the coupon is a launch."""
        now, coupon = share.t_ms, share.coupon
        audience = self.audience.peek(coupon, now)
        passer = audience.get(share.user, now) if audience is not None else None
        spread = self.spread.peek(coupon, now)
        if passer is not None and passer != share.user and (spread is None or len(spread) < self.c.launch_spread):
            spread = self.spread.touch(coupon, now)
            spread.add(passer)
        if fresh and share.allowed and share.recipients:
            audience = self.audience.touch(coupon, now)
            for r in share.recipients:
                if audience.get(r, now) is None:  # the first fresh sharer it heard the coupon from
                    audience.put(r, share.user, now)
        return spread is not None and len(spread) >= self.c.launch_spread

    def crowded(self, coupon: str, now: int) -> bool:
        """Whether ``coupon`` turned out a crowd in the window."""
        return bool(self.crowds_seen.get(coupon, now))
