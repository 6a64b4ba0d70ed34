"""Reward rings whose targets are their own members: claiming cores.

Some reward rings need no outside targets: their members share to one
another and claim what they get (the reward is the point), and cover their
tracks with shares to real users. Such a ring has no sink that a stranger
feeds, so ``sink_feeder`` and ``sink_recipient`` do not see it, and its
members name one or two fellows a share, so the circles of circles.py form
late or never (measured: 4 of 40 shares of such a ring refused). What it
cannot hide is its shape. Walk back from a sharer through who shared to it,
and who shared to those, for the window:

- a real user's inflow soon reaches someone nobody shared to (whoever first
  had the coupon) or spreads past ``core_reach`` accounts;
- a ring's inflow is *closed*: a few accounts, every one of them fed from
  inside the set.

Inside that set, the sharer's *core* is the strongly connected part it
belongs to (each member reaches every other through shares). It is judged
a ring when it has ``core_members`` or more accounts, at least
``core_cycles`` independent cycles (its links minus its members plus one: a
pair of friends sharing back and forth, and the people they alone share
to, make one), its members' receipts are claimed ``core_claim`` or more on
average (each receipt credited claimed / delivered of its share, as for
sinks), its links carry at least ``core_coupons`` distinct coupons per member (the
last few coupons of each link), and none of them posted to a group in the
window (``circle_no_posters``, as for circles). Measured on the
simulator's worlds: real friend communities that share only among
themselves exist (one of ten accounts with 17 independent cycles), but
their members mostly claim 0.03 to 0.36 of what they get from one another,
a ring's 0.41 to 0.59. The few that claimed as much passed one or two
coupons around (a cascade bouncing among five or seven friends: two to
four coupons on their links), where a ring's members share coupons of
their own, a new one for most shares (at least one per member on most
rings' cores found; the others passed as they grew).

To hide, a ring would need members that someone outside shares to, whose
own inflow then has to look real in turn; or to claim less, which is what
it is for; or to pass one coupon around, which the coupon-level signals
(``coupon_repeat``, ``lockstep``) watch.

The core's members are published as ring members (board kind ``m``, value:
the core's size) for the window, through :meth:`ClosedCircles.flag`, and
judged by the ``ring_block`` rule like a circle's.

Work per share: nothing unless a recipient has shared in the window (only
then can the share close a cycle); then at most ``core_reach`` accounts
walked, ``sharers_per_recipient`` senders each, and one walk forward from
the sharer over them. No Redis work beyond the board's writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from riskservice.signals.board import BoardWrite
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.circles import ClosedCircles
from riskservice.signals.share import Share
from riskservice.signals.sinks import SinkFeeder

__all__ = ["ClaimingCores", "closed_inflow", "core_of"]

Senders = Callable[[str], Iterable[str]]


def closed_inflow(start: str, senders: Senders, reach: int) -> set[str] | None:
    """The accounts that shared to ``start``, to them in turn, and so on, with ``start``.

    Parameters
    ----------
    start : str
        The account whose inflow is walked.
    senders : callable
        The accounts that shared to an account in the window.
    reach : int
        Most accounts walked.

    Returns
    -------
    set of str or None
        The set, or None when one of its accounts heard from nobody (the
        inflow is open: someone brought the coupons in) or it holds more
        than ``reach`` accounts.
    """
    seen, todo = {start}, [start]
    while todo:
        inflow = list(senders(todo.pop()))
        if not inflow:
            return None
        for account in inflow:
            if account not in seen:
                if len(seen) >= reach:
                    return None
                seen.add(account)
                todo.append(account)
    return seen


def core_of(start: str, accounts: set[str], senders: Senders) -> set[str]:
    """The strongly connected part of ``accounts`` (links: sender to recipient) holding ``start``.

    ``accounts`` is closed under ``senders`` (:func:`closed_inflow`), so the
    accounts that reach ``start`` are all of them: the core is those that
    ``start`` reaches back, found by walking forward from it.
    """
    forward: dict[str, list[str]] = {a: [] for a in accounts}
    for recipient in accounts:
        for sender in senders(recipient):
            if sender in forward:
                forward[sender].append(recipient)
    reached, todo = {start}, [start]
    while todo:
        for recipient in forward[todo.pop()]:
            if recipient not in reached:
                reached.add(recipient)
                todo.append(recipient)
    return reached


class ClaimingCores:
    """Claiming cores (see the module), published through :class:`ClosedCircles`."""

    def __init__(self, config: SignalConfig, circles: ClosedCircles, feeder: SinkFeeder) -> None:
        self.c, self.circles, self.feeder = config, circles, feeder

    def share(self, share: Share) -> list[BoardWrite]:
        """Judge a share (after :meth:`SinkFeeder.share`: it is in its state)."""
        c, now = self.c, share.t_ms
        if (not c.cores or not share.recipients or len(share.recipients) > c.circle_max_recipients
                or not any(self.feeder.fed.peek(r, now) is not None for r in share.recipients)):
            return []
        senders: Senders = lambda account: self.feeder.senders(account, now)  # noqa: E731
        inflow = closed_inflow(share.user, senders, c.core_reach)
        if inflow is None or len(inflow) < c.core_members:
            return []
        core = core_of(share.user, inflow, senders)
        if len(core) < c.core_members or not self._ring(core, senders, now):
            return []
        return self.circles.flag(share, core - {share.user}, (), len(core))

    def _ring(self, core: set[str], senders: Senders, now: int) -> bool:
        """Whether ``core`` has the cycles and the claims of a ring, and no group poster."""
        c = self.c
        links, coupons = 0, set[str]()
        for member in core:
            got = self.feeder.received.peek(member, now)
            for sender in senders(member):
                if sender in core:
                    links += 1
                    coupons.update((got.sharers.get(sender, now) or ()) if got is not None else ())
        if links - len(core) + 1 < c.core_cycles or len(coupons) < c.core_coupons * len(core):
            return False
        if c.circle_no_posters and any(self.circles.posted(member, now) for member in core):
            return False
        credits = []
        for member in core:
            got = self.feeder.received.peek(member, now)
            if got is not None:
                credits += [credit for _, credit in got.receipts.items(now)]
        return len(credits) >= c.core_members and sum(credits) >= c.core_claim * len(credits)
