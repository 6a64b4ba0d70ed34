"""Rings found before any of their recipients is heavy: closed circles.

``ring_block`` (blocks.py) finds a ring from its sinks' claims, which needs
three reports per sink: a ring that makes two or three ring shares per
member over a month has none when most of them are made. What a ring's
recipients *are* shows earlier: its members name the same few accounts
again and again, and nobody else does, while a real user's friends hear from
others too, and its friends' friends from others again. Judged at each
share, on ``sink_feeder``'s state (per recipient its sharers, per sharer the
recipients it reached):

- **a closed circle in one share**: the share names ``circle_recipients``
  or more accounts; ``circle_sharers`` or more other sharers each named
  ``circle_named`` or more of them before, and they are at least
  ``circle_share`` (half) of the recipients' other sharers: a ring's members
  name overlapping parts of its targets, so some name just one of a
  share's, while a real user's friends hear from many who name just them;
- **a closed circle across the sharer's recipients** (a ring whose members
  name one to three targets a share): the share's recipients were reached
  before by ``circle_fed_sharers`` or more other sharers, each of whom
  reached ``circle_named`` or more of the accounts this sharer reached in
  the window;
- in both, nobody outside the circle (its sharers, the share's sharer and
  the recipients it reached) ever shared to the circle's sharers or to this
  share's sharer: a real user's friends hear from their own friends. In one
  share, the recipients' other sharers that named just one of them are
  asked the same (they are inside the circle, not flagged as members);
- and none of those sharers posted to a group in the window (a share naming
  more than ``circle_max_recipients``, ``circle_no_posters``): a chat
  group's admin reaches every member at each post, so a member sharing to a
  few fellow members finds the admin "reaching two or more of them", and a
  group whose members hear from nobody outside it is closed. Measured: on
  two worlds such groups were taken for circles (a quarter to a half of the
  group admins' shares refused, 2.5 % of all organic shares); excluding
  group posters changed no fraud share on 54 other workloads. A ring's
  member that posts to a group (answering the customer's fan-out SMS
  challenge to do so) escapes the circles for the window, not
  ``ring_block``'s heavy claimers;
- a sharer that named the circle's accounts only with a crowd's coupons (a
  flash sale's fan, ``circle_no_crowds``) is none of its sharers: it still
  counts as somebody outside who named them (it can break a circle, not
  make one). Measured: two fans of a sale and a group admin posting to its
  ten members were taken for a circle (26 real shares refused); a ring
  that wanted to hide its circle that way would have to name its targets
  with crowds' coupons only, as it would to escape ``sink_feeder``.

A circle's sharers are published as members (board kind ``m``), value: the
circle's sharers (the others and this one), for ``window_ms``; the
``ring_block`` rule judges them (same code, threshold and settings). A
circle found in one share also publishes its recipients, as ring sinks
(``b``) and as members (as a ring sink's fellows are,
``block_fellows_flagged``), and a later share naming one of them joins the
circle (``circle_joins``): its sharer is a member too, as a ring's new
member naming the ring's targets. A circle found across shares publishes
no recipient: the recipients of the share that completes it need not be
the ring's targets (a member's cover share to real users whom only ring
members and sprayers happened to reach: measured, that flagged real users). No claim is needed: what
it rests on is that nobody outside the circle is in touch with it.

Work per share: nothing for a share naming fewer than ``circle_recipients``
accounts unless one of them has other sharers; at most
``circle_max_recipients`` x ``sharers_per_recipient`` lookups to list who
named the recipients (32 x 32), and for the circle across the sharer's
recipients, per other sharer (at most ``sharers_per_recipient``) the
recipients it reached (at most ``recipients_per_sharer``, 128), stopping at
the first that does not fit; as many to read the inflow of the circle's
sharers. No Redis work beyond the board's writes, none in the decision.
"""

from __future__ import annotations

from collections import Counter

from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Recent
from riskservice.signals.share import Share
from riskservice.signals.sinks import SinkFeeder

__all__ = ["ClosedCircles"]


class ClosedCircles:
    """Closed circles of sharers and recipients, published on a :class:`Board`."""

    def __init__(self, config: SignalConfig, board: Board, feeder: SinkFeeder) -> None:
        self.c, self.board, self.feeder = config, board, feeder
        # recipient -> the closed circle it was named in (its size), kept as
        # long as its flag: its later judgements as a ring sink must not
        # withdraw it, and a sharer naming it joins the circle.
        self.circled: Recent[str, int] = Recent(config.entities, config.window_ms)
        # sharer -> the accounts its last group post named (a share naming
        # more than `circle_max_recipients`), kept for the window
        self.posters: Recent[str, int] = Recent(config.entities, config.window_ms)

    def share(self, share: Share) -> list[BoardWrite]:
        """Judge a share (after :meth:`SinkFeeder.share`: it is in its state)."""
        c, now = self.c, share.t_ms
        if c.circle_no_posters and len(share.recipients) > c.circle_max_recipients:
            self.posters.put(share.user, len(share.recipients), now)
        if not c.circles or not share.recipients or len(share.recipients) > c.circle_max_recipients:
            return []
        joined = max((self.circled.get(r, now) or 0 for r in share.recipients), default=0)
        if not c.circle_joins or (joined and c.circle_join_closed and not self._heard_inside(share)):
            joined = 0
        named = self._others(share)
        own = self._own(share) if c.circle_no_crowds else named
        circle = self._in_share(share, named, own)
        if circle is not None:
            # When some of the recipients' other sharers named just one, the
            # share may be a member's cover share naming a real user for the
            # first time besides ring accounts (measured: a slow farm's share
            # made a real user a ring sink): only the recipients the circle
            # named before are flagged.
            recipients = share.recipients if len(circle) == len(named) else self._named_before(share)
            return self.flag(share, circle, recipients, max(len(circle) + 1, joined))
        # Across shares, only the sharers are flagged: the share's recipients
        # need not be the ring's targets (a member's cover share to real users
        # whom only ring members and sprayers happened to reach).
        circle = self._across(share, set(named), set(own))
        if circle is not None:
            return self.flag(share, circle, (), max(len(circle) + 1, joined))
        return self.flag(share, set(), (), joined) if joined else []

    def _others(self, share: Share) -> Counter[str]:
        """The recipients' other sharers, and how many of them each named."""
        named: Counter[str] = Counter()
        for r in share.recipients:
            named.update(p for p in self.feeder.senders(r, share.t_ms) if p != share.user)
        return named

    def _own(self, share: Share) -> Counter[str]:
        """The recipients' other sharers, and how many of them each named
        with a coupon that is no crowd's (``circle_no_crowds``).

        Hundreds of fans sending a flash sale's coupon to their friends name,
        by chance, two or three members of one real group, who hear from
        nobody else: measured, a group admin's post to its group and two
        such fans made a "closed circle", and 26 shares of the admin, the
        fans and the group's friends were refused for the month. A ring's
        members name its targets with coupons of their own, again and again
        (as for ``sink_feeder``, sinks.py). Such a fan is no sharer of a
        circle; it still is somebody outside who named its accounts, so it
        can break a circle (as before) but not make one.
        """
        own: Counter[str] = Counter()
        for r in share.recipients:
            own.update(p for p in self.feeder.feeders(r, share.t_ms) if p != share.user)
        return own

    def _named_before(self, share: Share) -> tuple[str, ...]:
        """The share's recipients that another sharer named before."""
        return tuple(r for r in share.recipients
                     if any(p != share.user for p in self.feeder.senders(r, share.t_ms)))

    def _in_share(self, share: Share, named: Counter[str], own: Counter[str]) -> set[str] | None:
        c = self.c
        if len(share.recipients) < c.circle_recipients:
            return None
        # (`own`: the namings with coupons that are no crowd's, see `_own`)
        circle = {p for p, n in own.items() if n >= c.circle_named}
        # The other sharers of the recipients named several of them, most of
        # them (`circle_share`): a real user's friends also hear from friends
        # who name just them. A ring's members name overlapping parts of its
        # targets, so some of them name just one of a share's; they are
        # inside all the same, and the closure is asked of every one of them.
        if len(circle) < c.circle_sharers or len(circle) < c.circle_share * len(named):
            return None
        if len(circle) < len(named) and not self._linked(share, circle, set(named) - circle):
            return None
        return circle if self._closed(share, set(named), set(share.recipients)) else None

    def _linked(self, share: Share, circle: set[str], singles: set[str]) -> bool:
        """Whether each of ``singles`` (other sharers that named one of the
        share's recipients) reached ``circle_named`` or more of the accounts
        the circle's sharers and this one reached: a ring's member naming
        other targets of the ring, not a friend of one of them."""
        now = share.t_ms
        reach = set(share.recipients)
        for account in (share.user, *sorted(circle)):
            fed = self.feeder.fed.peek(account, now)
            reach.update(fed.keys(now) if fed is not None else ())
        for p in sorted(singles):
            theirs = self.feeder.fed.peek(p, now)
            if theirs is None or sum(1 for r in theirs.keys(now) if r in reach) < self.c.circle_named:
                return False
        return True

    def _across(self, share: Share, others: set[str], own: set[str]) -> set[str] | None:
        """The circle across the sharer's recipients: ``others`` (those of
        ``own``, see :meth:`_own`), or None."""
        c, now = self.c, share.t_ms
        if not c.circle_fed_sharers <= len(others) <= c.sharers_per_recipient:
            return None
        fed = self.feeder.fed.peek(share.user, now)
        reached = set(fed.keys(now)) if fed is not None else set(share.recipients)
        for p in sorted(others):
            theirs = self.feeder.fed.peek(p, now)
            if theirs is None or sum(1 for r in theirs.keys(now) if r in reached) < c.circle_named:
                return None
        circle = others & own
        if len(circle) < c.circle_fed_sharers:
            return None
        return circle if self._closed(share, others, reached) else None

    def _closed(self, share: Share, circle: set[str], reached: set[str]) -> bool:
        """Whether nobody outside the circle shared to its sharers or to this one,
        and none of them posted to a group in the window."""
        if self.c.circle_no_posters and any(self.posted(p, share.t_ms) for p in (share.user, *circle)):
            return False
        inside = circle | reached | {share.user}
        for account in (share.user, *sorted(circle)):
            if any(p not in inside for p in self.feeder.senders(account, share.t_ms)):
                return False
        return True

    def _heard_inside(self, share: Share) -> bool:
        """Whether everyone who shared to this sharer in the window is flagged
        as a ring member or a ring sink: a circle's joiner must be as closed
        as its members (``circle_join_closed``)."""
        now = share.t_ms
        return all(self.board.get("m", p, now) is not None or self.board.get("b", p, now) is not None
                   for p in self.feeder.senders(share.user, now))

    def posted(self, account: str, now: int) -> bool:
        """Whether ``account`` posted to a group (a share naming more than
        ``circle_max_recipients``) in the window."""
        return self.posters.get(account, now) is not None

    def flag(self, share: Share, circle: set[str], recipients: tuple[str, ...], size: int) -> list[BoardWrite]:
        """Publish ``circle``'s sharers and this one (and ``recipients``, as ring
        sinks and members) as a ring of ``size`` for the window."""
        c, now = self.c, share.t_ms
        until = now + c.window_ms
        # Its recipients are members too (as a ring sink's fellows are): in a
        # ring whose targets are its own members, their next shares are the ring's.
        members = circle | {share.user} | (set(recipients) if c.block_fellows_flagged else set())
        flags: list[tuple[str, str, int, int]] = []
        writes: list[BoardWrite] = []
        for kind, accounts in (("b", sorted(recipients)), ("m", sorted(members))):
            for account in accounts:
                held = self.board.get(kind, account, now)
                if held is None or held[0] < size or held[1] - now <= c.window_ms // 2:
                    flags.append((kind, account, max(size, held[0] if held else 0), until))
                if kind == "b":
                    self.circled.put(account, max(size, self.circled.get(account, now) or 0), now)
                else:
                    writes += self.board.clear("w", account, now)  # a ring member has no standing
        return self.board.set_many(flags, now) + writes
