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
``launch_audience``, each with the burst its sharer was in), and per burst
the fresh sharers one of whose recipients shared the coupon afterwards.
When a burst has ``launch_spread`` (2) such sharers, it was the coupon's
launch: the flags it gave are withdrawn, and it gives no more. One is not
enough: a group's target may hear of a popular coupon elsewhere and share
it. Only that burst is cleared: a group riding the coupon in another burst
the same day (groups ride real coupons, often in the hours after their
launch) is judged by its own cascade, not the launch's.
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
        # coupon -> when its current burst began (each share within `burst_ms` of the one before)
        self.began: Recent[str, int] = Recent(config.coupons, DAY_MS)
        self.crowds: Entities[str, Recent[str, None]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(config.crowd_sharers, DAY_MS))
        # coupons that turned out crowds, remembered as long as evidence counts
        self.crowds_seen: Recent[str, bool] = Recent(config.coupons, config.window_ms)
        # coupon -> the accounts its bursts flagged -> when that burst began
        # (withdrawn if the coupon turns out a crowd, or the burst a launch)
        self.granted: Entities[str, dict[str, int]] = Entities(config.coupons, DAY_MS, dict)
        # coupon -> recipients of its fresh sharers' allowed shares -> (the sharer, when its burst began)
        self.audience: Entities[str, Recent[str, tuple[str, int]]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(config.launch_audience, DAY_MS))
        # coupon -> burst (when it began) -> its fresh sharers one of whose
        # recipients shared the coupon afterwards (at most `launch_spread`
        # kept: all the rule asks is whether there are that many); a day's bursts
        self.spread: Entities[str, Recent[int, set[str]]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(DAY_MS // config.burst_ms, DAY_MS))

    def share(self, share: Share) -> list[BoardWrite]:
        c, now, user, coupon = self.c, share.t_ms, share.user, share.coupon
        day = self.crowds.touch(coupon, now)
        day.put(user, None, now)
        recent = self.bursts.touch(coupon, now)
        began = self.began.get(coupon, now)
        if began is None or not any(now - x[0] < c.burst_ms for x in recent):
            began = now  # a new burst
        self.began.put(coupon, began, now)
        recent[:] = [x for x in recent if now - x[0] < c.burst_ms and x[1] != user][-c.sharers_per_burst:]
        fresh_now = self.fresh(user, now)
        recent.append((now, user, fresh_now))
        writes = self._passed_on(share, fresh_now, began)
        if len(day) >= c.crowd_sharers:
            # A crowd: a flash sale or a popular coupon. Flags it gave go.
            self.crowds_seen.put(coupon, True, now)
            granted = self.granted.peek(coupon, now)
            writes += [w for member in sorted(granted or ()) for w in self.board.clear("g", member, now)]
            if granted:
                granted.clear()
            return writes
        fresh = [u for _, u, f in recent if f]
        if len(fresh) < c.fresh_burst or 2 * len(fresh) < len(recent) or self._launch(coupon, began, now):
            return writes
        granted = self.granted.touch(coupon, now)
        for member in fresh:
            granted[member] = began
            held = self.board.get("g", member, now)
            if held is None or held[0] < len(fresh):
                writes += self.board.set("g", member, len(fresh), now + c.window_ms, now)
        return writes

    def _passed_on(self, share: Share, fresh: bool, began: int) -> list[BoardWrite]:
        """Note whose recipient passed ``share``'s coupon on; withdraw the
        flags of a burst this shows to be the coupon's launch."""
        now, coupon = share.t_ms, share.coupon
        writes: list[BoardWrite] = []
        audience = self.audience.peek(coupon, now)
        heard = audience.get(share.user, now) if audience is not None else None
        if heard is not None and heard[0] != share.user:
            passer, burst = heard
            bursts = self.spread.touch(coupon, now)
            passers = bursts.get(burst, now) or set()
            if passer not in passers and len(passers) < self.c.launch_spread:
                passers.add(passer)
                bursts.put(burst, passers, now)
                granted = self.granted.peek(coupon, now)
                if len(passers) == self.c.launch_spread and granted:
                    for member in sorted(m for m, b in granted.items() if b == burst):
                        del granted[member]
                        writes += self.board.clear("g", member, now)
        if fresh and share.allowed and share.recipients:
            audience = self.audience.touch(coupon, now)
            for r in share.recipients:
                if audience.get(r, now) is None:  # the first fresh sharer it heard the coupon from
                    audience.put(r, (share.user, began), now)
        return writes

    def _launch(self, coupon: str, burst: int, now: int) -> bool:
        """Whether the burst of ``coupon`` that began at ``burst`` was its launch."""
        bursts = self.spread.peek(coupon, now)
        passers = bursts.get(burst, now) if bursts is not None else None
        return passers is not None and len(passers) >= self.c.launch_spread

    def crowded(self, coupon: str, now: int) -> bool:
        """Whether ``coupon`` turned out a crowd in the window."""
        return bool(self.crowds_seen.get(coupon, now))
