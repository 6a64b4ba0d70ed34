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
burst's fresh accounts) for ``fresh_burst_ms``: their next shares are judged by
the ``fresh_burst`` rule. A flash sale's first minutes can look like that
(its first few fans may be new); when the coupon turns out a crowd, the
flags it gave are withdrawn, as ``lockstep`` forgets meetings made on a
coupon before it turned out one.

A coupon's launch can look like that too: a merchant issues a coupon, its
first sharers come together within minutes, and a real user who shares
once a month is fresh at its first share in the window. A real sharer's
friends pass the coupon on; a group's targets do not. So per coupon the
consumer keeps, for a day, the recipients of its fresh sharers' allowed
shares (at most ``launch_audience``, each with the sharer it heard the
coupon from first), and when one of them shares the coupon, that sharer's
flag is withdrawn, as it is when the sharer receives a share: its own
cascade says it is a real user. Each account is judged by its own
recipients only, so a group sharing inside a real launch's burst keeps its
flags. With ``fresh_burst_passed_on``, the burst is judged
again then, without its passed-on sharers: when the rest are too few for a
fresh burst, every flag it gave goes (a launch's other first sharers, whose
own friends had not passed it on yet); a group keeps its flags while its own
fresh members are a fresh burst on their own.

With ``fresh_burst_next_share``, a member's flag is published at its next
share after the burst (any coupon), not at the burst: that share goes
through, the ones after it are judged. Most real users refused by this
signal were a launch's first sharers who share once or twice a month,
refused at their next share: the launch coupon again, to another chat, an
hour later, or their next coupon days later. An account made for bursts
keeps sharing (camouflage, the group's next burst), so its flag bites one
share later; a group gains one share per member and burst. Until then the
member is *held*: withdrawn as a flag would be (it receives a share, its
recipient passes the coupon on, its burst is judged again or the coupon
turns out a crowd), and not on the board, so it keeps its standing.
"""

from __future__ import annotations

from collections.abc import Callable

from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.passers import Passers
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
        # coupon -> the accounts its bursts flagged (withdrawn if it turns out a crowd)
        self.granted: Entities[str, set[str]] = Entities(config.coupons, DAY_MS, set)
        # coupon -> recipients of its fresh sharers' allowed shares -> the sharer (the first)
        self.audience: Entities[str, Recent[str, str]] = Entities(
            config.coupons, DAY_MS, lambda: Recent(config.launch_audience, DAY_MS))
        # (SignalConfig.fresh_burst_passed_on) per coupon, its fresh sharers one
        # of whose recipients passed it on, and its last flagging burst, for a day
        self.passers = (Passers(config.coupons, config.launch_audience, DAY_MS)
                        if config.fresh_burst_passed_on else None)
        # (SignalConfig.fresh_burst_next_share) members held until their next
        # share: user -> (the burst's fresh accounts, until)
        self.held: Recent[str, tuple[int, int]] = Recent(config.entities, config.fresh_burst_ms)

    def share(self, share: Share) -> list[BoardWrite]:
        c, now, user = self.c, share.t_ms, share.user
        # (this share was decided without its held flag: its flag bites from the next)
        writes = self._publish_held(user, now)
        if share.allowed:
            for r in share.recipients:  # as a flag goes when its account receives a share (engine.py)
                self.held.pop(r)
        day = self.crowds.touch(share.coupon, now)
        day.put(user, None, now)
        recent = self.bursts.touch(share.coupon, now)
        recent[:] = [x for x in recent if now - x[0] < c.burst_ms and x[1] != user][-c.sharers_per_burst:]
        fresh_now = self.fresh(user, now)
        recent.append((now, user, fresh_now))
        writes += self._passed_on(share, fresh_now)
        if len(day) >= c.crowd_sharers:
            # A crowd: a flash sale or a popular coupon. Flags it gave go.
            self.crowds_seen.put(share.coupon, True, now)
            granted = self.granted.peek(share.coupon, now)
            writes += [w for member in sorted(granted or ()) for w in self._withdraw(member, now)]
            if granted:
                granted.clear()
            return writes
        fresh = [u for _, u, f in recent if f]
        if self.passers is not None:
            fresh = self.passers.unpassed(share.coupon, fresh, now)
        if len(fresh) < c.fresh_burst or 2 * len(fresh) < len(recent):
            return writes
        if self.passers is not None:
            self.passers.note(share.coupon, fresh, len(recent), now)
        granted = self.granted.touch(share.coupon, now)
        for member in fresh:
            granted.add(member)
            writes += self._flag(member, len(fresh), now)
        return writes

    def _flag(self, member: str, value: int, now: int) -> list[BoardWrite]:
        """Flag ``member`` of a fresh burst of ``value`` fresh accounts: on the
        board if it is there already, else held until its next share
        (``fresh_burst_next_share``); a larger burst raises the value."""
        until = now + self.c.fresh_burst_ms
        on_board = self.board.get("g", member, now)
        if on_board is not None or not self.c.fresh_burst_next_share:
            if on_board is None or on_board[0] < value:
                return self.board.set("g", member, value, until, now)
            return []
        held = self.held.get(member, now)
        if held is None or held[0] < value:
            self.held.put(member, (value, until), now)
        return []

    def _publish_held(self, user: str, now: int) -> list[BoardWrite]:
        """Publish ``user``'s held flag: this is its next share after its burst."""
        held = self.held.pop(user)
        if held is None or held[1] <= now:
            return []
        return self.board.set("g", user, held[0], held[1], now)

    def _withdraw(self, user: str, now: int) -> list[BoardWrite]:
        """Withdraw ``user``'s flag, published or held."""
        self.held.pop(user)
        return self.board.clear("g", user, now)

    def _passed_on(self, share: Share, fresh: bool) -> list[BoardWrite]:
        """Withdraw the flag of the fresh sharer ``share``'s sharer heard the
        coupon from (its recipient passed it on); note ``share``'s recipients
        when its sharer is fresh."""
        now, coupon = share.t_ms, share.coupon
        audience = self.audience.peek(coupon, now)
        passer = audience.get(share.user, now) if audience is not None else None
        writes: list[BoardWrite] = []
        if passer is not None and passer != share.user:
            writes = self._withdraw(passer, now) + self._rejudge(coupon, passer, now)
        if fresh and share.allowed and share.recipients:
            audience = self.audience.touch(coupon, now)
            for r in share.recipients:
                if audience.get(r, now) is None:  # the first fresh sharer it heard the coupon from
                    audience.put(r, share.user, now)
        return writes

    def _rejudge(self, coupon: str, passer: str, now: int) -> list[BoardWrite]:
        """Judge ``coupon``'s last flagging burst again now that a recipient of
        ``passer`` passed the coupon on; when its other fresh sharers are too
        few for a fresh burst, every flag it gave goes.

        Why: each account judged by its own recipients only left a real
        launch's other first sharers flagged for a month when their own
        friends had not passed it on yet (most of this signal's organic
        refusals on the design workloads: a seed's next share of the coupon,
        hours later). A group inside a real launch's burst keeps its flags
        while its own fresh members are a fresh burst on their own.
        """
        if self.passers is None:
            return []
        self.passers.mark(coupon, passer, now)
        held = self.passers.burst_of(coupon, passer, now)
        if held is None:
            return []
        fresh, sharers = held
        left = self.passers.unpassed(coupon, fresh, now)
        if len(left) >= self.c.fresh_burst and 2 * len(left) >= sharers:
            return []
        self.passers.forget(coupon)
        granted = self.granted.peek(coupon, now)
        writes = [w for u in fresh for w in self._withdraw(u, now)]
        if granted:
            granted.difference_update(fresh)
        return writes

    def crowded(self, coupon: str, now: int) -> bool:
        """Whether ``coupon`` turned out a crowd in the window."""
        return bool(self.crowds_seen.get(coupon, now))
