"""Accounts that keep sharing together: the same coupon in the same burst,
again and again with the same partners.

A burst is the shares of one coupon within ``burst_ms`` of each other. Two
accounts meeting in one burst is nothing: a flash sale brings hundreds of
real sharers together once. Meeting again on another coupon is: per account,
its partners and on how many distinct coupons it met each; the value is the
number of partners met on at least ``lockstep_coupons`` coupons, or met once
when that partner is a *core* member (it met ``lockstep_core`` partners on
several coupons): so when the first few of a group meet again, the rest of
the group is flagged before its own next share. Such single meetings count
only while the coupons the account met anyone on are at least
``lockstep_member_share`` of the coupons it shared: a group admin who once
shared a coupon in the middle of a group's burst, among twenty coupons of
its own, met its whole core once and was refused for a month. And only for
an account that *nobody shared to* in the window (``heard``, the engine's
record of who received a share): a quiet real user whose first share of the
month fell in a group's burst met its whole core once, and a quarter of
one or two coupons is no bar; but a real user hears from friends (four in
five of them had received a share before their second one, on the design
workloads), while accounts made to push a group's coupons are sent nothing
(none of the lockstep groups' members had). An account that receives a
share after its meeting is read again then (engine.py). A group that sends
to its own members to look heard still meets again on its next burst, and
repeated meetings count whoever received what.

Together. A partner met on several coupons counts only when another such
partner was met on the same coupons (``lockstep_together`` partners in
all): a group meets as a group, burst after burst, while a prolific real
user (forty coupons a month, heard from by dozens of friends) runs into
other prolific sharers by chance, now and then into the same one twice,
but each such pair on coupons of its own (three such partners were most of
this signal's organic refusals on the design workloads). A core member is
judged the same way. To evade it a group must keep any three of its members
from meeting in two of its bursts: bursts of strangers, not a group.

Quiet bursts. A group's first burst meets nobody it met before, so the
rules above wait for its second, and a group that spreads camouflage shares
between its bursts gets them all through (the ten-minute groups of the
``hard`` profile, a third to a half of their shares on the workloads where
they fell short). What its first burst already shows is who joins it: the
accounts a group pushes its coupons with are sent nothing, a real user
hears from friends. A burst of one calm coupon (no crowd of a day or an
hour) with at least ``lockstep_quiet`` sharers that nobody shared to in the
window, at least ``lockstep_quiet_share`` of its sharers, is *quiet*: each
of those sharers counts the burst's other quiet sharers as partners, for
the window, while nobody shares to it (the engine re-reads an account that
receives a share) and while the coupon stays calm (a flash sale's first
minutes can look quiet; those who shared on a coupon that turns out a crowd
are read again). Unlike a single meeting with a core member, the burst
itself is the evidence, so the part of the account's coupons met on does
not matter (a group's camouflage dilutes it). A real launch's first minutes
can be quiet too (users who share once a month), but a real sharer's friends
pass the coupon on: a quiet sharer one of whose recipients shares the coupon
later, having heard it from it first, counts as heard in its burst, which is
judged again then (``lockstep_passed_on``, :meth:`Lockstep._passed_on`).
To evade it a group must have its members sent shares (each a share it
must make, and a real user who receives it may claim or pass it on, which
other rules read), or keep its bursts under eight unheard accounts (more bursts, each a chance for
``lockstep``'s repeated meetings). Judged once the engine has seen
``lockstep_quiet_after_ms`` of history: before that, everybody is unheard.
The bursts of those first two days are kept (per coupon, its largest) and
judged once, at the first share after them, by who was sent a share by then
(``lockstep_quiet_early``): nobody shared to in all that history is as
unheard as a later burst's sharers, and a group whose first burst fell in
them otherwise passed all its camouflage until its second burst.

Crowds. A coupon shared by ``crowd_sharers`` or more distinct accounts
within ``rush_ms`` (an hour) is a *rush*, a flash sale: no meeting on it
counts, since the same fans come back to the merchant's next sale. One
that many accounts share over a day, but never so many at once, is *busy*:
a popular coupon. A group rides popular live coupons (its bursts add a few
dozen sharers to the coupon's day), so repeated meetings on a busy coupon
still count; a single meeting with a core member on it does not (a real
user sharing the popular coupon in the middle of the group's burst met the
whole group once). Until both were told apart, a day's crowd excused every
group riding a popular coupon (its members' values fell back to zero as
soon as the coupon's day reached the crowd size). A coupon's day crowd is
counted apart from its largest burst of the day (``lockstep_busy_apart``):
a group of twenty riding a coupon that twenty others shared that day made
it busy on its own, which excused its quiet burst and its single meetings.
A popular coupon's crowd comes over the day, not in one burst; to make its
coupon busy a group must bring a crowd's worth of others or share out of
its burst (then its members meet nobody).

After the rush. A flash sale's coupon stays live after its rush, and a
group rides it like any live coupon: its burst, an hour or more after the
coupon's last *rush moment* (a share when its last hour held a crowd), is no
meeting of the sale's fans (they shared within minutes of each other).
Meetings from then on are kept under the coupon's *after-rush* key
(:func:`after_rush`) and judged on their own, as a coupon of their own:
calm unless the after-rush sharers are a crowd over a day themselves
(busy), or the coupon rushes again (then they never count). Meetings from
an hour before a rush to an hour after it are the sale's and never count
(those made before it are on the coupon's own key, which the rush marks;
those in the hour after it are not kept). Before this, a group whose first
burst rode a past flash sale's coupon lost that burst's meetings, and was
caught a burst later.

Work per share is bounded by the sharers a burst keeps
(``sharers_per_burst``), the partners each account keeps
(``partners_per_user``) and the coupons it shared that are kept
(``coupons_per_user``); per coupon, at most ``crowd_sharers`` sharers of
its day and of its hour (and of its day after a rush). A quiet burst is
judged again at each of its shares: at most ``sharers_per_burst`` look-ups
of who was sent a share, and as many records of ``QUIET_BURSTS`` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import combinations

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.passers import Passers
from riskservice.signals.share import Outcome, Share

__all__ = ["Lockstep", "after_rush"]

# Per partner: the coupons met on (the last few).
Met = tuple[str, ...]
# How crowded a coupon turned out: not at all; a crowd over a day (a popular
# coupon: a group riding it still meets on it, repeated meetings count); a
# crowd at once (a flash sale: no meeting on it counts).
CALM, BUSY, RUSH = 0, 1, 2
# Quiet bursts kept per account (the most recent): a group's member needs one.
QUIET_BURSTS = 4
# Appended to a coupon's id for meetings on it after its rush (ids never hold
# control characters: decisions/request.py).
AFTER_RUSH = "\x00after-rush"


def after_rush(coupon: str) -> str:
    """The key of meetings on ``coupon`` made an hour or more after its last rush moment."""
    return coupon + AFTER_RUSH


class Lockstep:
    """Partners met in bursts of the same coupons, per account."""

    code = "lockstep"
    per_device = False

    def __init__(self, config: SignalConfig, heard: Callable[[str, int], bool] = lambda user, now: False) -> None:
        self.window, self.burst, self.needed = config.window_ms, config.burst_ms, config.lockstep_coupons
        # Whether an account received a share in the window (set by the engine).
        self.heard = heard
        self.core, self.member_share = config.lockstep_core, config.lockstep_member_share
        self.together = config.lockstep_together
        # account -> coupons it shared (the last few dozen)
        self.shared: Entities[str, Recent[str, None]] = Entities(
            config.entities, self.window, lambda: Recent(config.coupons_per_user, self.window))
        self.per_burst, self.crowd = config.sharers_per_burst, config.crowd_sharers
        # coupon -> its distinct sharers of the last day, up to the crowd size;
        # and the coupons found crowded, for as long as meetings are kept
        # (meetings on a coupon before it turned out a crowd stop counting).
        # (with lockstep_busy_apart, a burst's worth more: the crowd is counted
        # apart from the day's largest burst)
        day_cap = self.crowd + (self.per_burst if config.lockstep_busy_apart else 0)
        self.crowds: Entities[str, Recent[str, None]] = Entities(config.coupons, DAY_MS,
                                                                lambda: Recent(day_cap, DAY_MS))
        rush_ms = config.rush_ms
        self.rushes: Entities[str, Recent[str, None]] = Entities(config.coupons, rush_ms,
                                                                lambda: Recent(self.crowd, rush_ms))
        # coupon -> the most sharers one burst of it held, over the last day
        # (SignalConfig.lockstep_busy_apart): None when every sharer counts.
        self.largest: Recent[str, int] | None = (
            Recent(config.coupons, DAY_MS) if config.lockstep_busy_apart else None)
        # coupon (or its after-rush key) -> BUSY or RUSH, for as long as meetings are kept
        self.crowded: Recent[str, int] = Recent(config.coupons, self.window)
        # coupon -> its last rush moment (its last hour held a crowd)
        self.rushed_at: Recent[str, int] = Recent(config.coupons, self.window)
        self.rush_ms = rush_ms
        partners = config.partners_per_user
        # coupon -> recent sharers of it, (ms, user), oldest first
        self.bursts: Entities[str, list[tuple[int, str]]] = Entities(config.coupons, self.burst, list)
        self.partners: Entities[str, Recent[str, Met]] = Entities(config.entities, self.window,
                                                                 lambda: Recent(partners, self.window))
        # account -> the quiet bursts it was in: coupon -> the burst's quiet sharers
        self.quiet: Entities[str, Recent[str, int]] = Entities(config.entities, self.window,
                                                              lambda: Recent(QUIET_BURSTS, self.window))
        self.quiet_min, self.quiet_share = config.lockstep_quiet, config.lockstep_quiet_share
        # (a smaller burst is quiet when every one of its sharers is unheard)
        self.quiet_whole = config.lockstep_quiet_whole
        # the fewest sharers a quiet burst can have
        self.quiet_least = min(n for n in (self.quiet_min, self.quiet_whole) if n > 0) if self.quiet_min > 0 else 0
        self.quiet_after = config.lockstep_quiet_after_ms
        # the first share seen (quiet bursts are judged only after enough history)
        self.since: int | None = None
        # Bursts of the first `quiet_after` ms, judged once that much history
        # is seen: coupon -> (when, sharers) of its largest burst then.
        self.early: Recent[str, tuple[int, tuple[str, ...]]] | None = (
            Recent(config.coupons, self.window) if config.lockstep_quiet_early else None)
        # (SignalConfig.lockstep_passed_on) coupon -> recipients of its unheard
        # sharers' allowed shares -> the sharer each heard it from first, for a
        # day; and per coupon, the sharers one of whom passed it on and its last
        # quiet burst, for the window (an early burst is judged up to two days
        # after it).
        self.audience: Entities[str, Recent[str, str]] | None = None
        self.passers: Passers | None = None
        if config.lockstep_passed_on:
            cap = config.launch_audience
            self.audience = Entities(config.coupons, DAY_MS, lambda: Recent(cap, DAY_MS))
            self.passers = Passers(config.coupons, cap, self.window)

    def share(self, share: Share) -> list[Reading]:
        now, user, coupon = share.t_ms, share.user, share.coupon
        if self.since is None:
            self.since = now
        touched: set[str] = set()
        if self.early is not None and now - self.since >= self.quiet_after:
            touched.update(self._judge_early(now))
        touched.update(self._passed_on(share, now))
        self.shared.touch(user, now).put(coupon, None, now)
        recent = self.bursts.touch(coupon, now)
        recent[:] = [(t, u) for t, u in recent if now - t < self.burst][-self.per_burst:]
        met = {u for _, u in recent if u != user}
        if all(u != user for _, u in recent):
            recent.append((now, user))
        day = self.crowds.touch(coupon, now)
        day.put(user, None, now)
        rush = self.rushes.touch(coupon, now)
        rush.put(user, None, now)
        touched.update((user, *met))
        level = self.crowded.get(coupon, now) or CALM
        crowd = RUSH if len(rush) >= self.crowd else BUSY if self._busy(coupon, len(recent), len(day), now) else CALM
        if crowd > level:
            # A crowd (see SignalConfig.crowd_sharers and rush_ms). Those
            # who met on it before it became one are read again.
            touched.update(day.keys(now))
            self.crowded.put(coupon, crowd, now)
            level = crowd
        key = coupon  # what meetings on this share are kept under
        if crowd == RUSH:
            self.rushed_at.put(coupon, now, now)
            late = after_rush(coupon)
            tail = self.crowds.peek(late, now)
            if tail is not None and (self.crowded.get(late, now) or CALM) < RUSH:
                # A second rush: the meetings made since the first one stop counting too.
                self.crowded.put(late, RUSH, now)
                touched.update(tail.keys(now))
        if level == RUSH:
            last = self.rushed_at.get(coupon, now)
            if last is None or now - last < self.rush_ms:
                met = set()  # the sale's own sharers
            else:
                # An hour past its last rush moment: what follows is judged on
                # its own, calm unless it is a crowd of its own over a day.
                key = after_rush(coupon)
                tail = self.crowds.touch(key, now)
                tail.put(user, None, now)
                if len(tail) >= self.crowd and (self.crowded.get(key, now) or CALM) < BUSY:
                    touched.update(tail.keys(now))
                    self.crowded.put(key, BUSY, now)
        if level == CALM:
            touched.update(self._quiet_burst(coupon, [u for _, u in recent], now))
        # Only the meetings below change the state between the two reads,
        # and they change only the partners of the sharer and of those it
        # met: no one else's core membership can change.
        before = _Reads(self, now)
        met_now = (user, *met)
        cores = [before.core(u) for u in met_now]
        for partner in met:
            self._meet(user, partner, key, now)
            self._meet(partner, user, key, now)
        # An account that became (or stopped being) a core member changes the
        # value of everyone it met: they are re-read too.
        after = _Reads(self, now)
        for u, was in zip(met_now, cores, strict=True):
            if after.core(u) != was:
                partners = self.partners.peek(u, now)
                touched.update(partners.keys(now) if partners else ())
        return [self.reading(u, now, after) for u in sorted(touched)]

    def _busy(self, coupon: str, burst: int, day: int, now: int) -> bool:
        """Whether ``coupon`` is a crowd over a day: ``day`` distinct sharers
        of it in the last day, ``burst`` in its current burst.

        With ``lockstep_busy_apart``, the sharers of its largest burst of
        the day do not count. Why: a group of twenty riding a coupon that
        twenty others share that day made it a crowd on its own, and a busy
        coupon excuses the group's quiet burst and its single meetings with
        its core. A popular coupon's crowd comes over the day, not in one
        burst; to make its coupon busy, a group must bring the crowd's worth
        of others, or spread its members out of the burst (and then they
        meet nobody).
        """
        if self.largest is None:
            return day >= self.crowd
        held = self.largest.get(coupon, now)
        if held is None or held < burst:
            # (kept a day from the largest burst: it leaves the day then)
            self.largest.put(coupon, burst, now)
            held = burst
        return day - held >= self.crowd

    def _quiet_burst(self, coupon: str, sharers: list[str], now: int) -> list[str]:
        """Note the quiet sharers of ``coupon``'s current burst (``sharers``)
        when the burst is quiet; the accounts whose record changed."""
        assert self.since is not None
        if self.quiet_least <= 0 or len(sharers) < self.quiet_least:
            return []
        if now - self.since < self.quiet_after:
            if self.early is not None:
                # Everybody looks unheard yet: keep the burst, judged later.
                held = self.early.get(coupon, now)
                if held is None or len(held[1]) <= len(sharers):
                    self.early.put(coupon, (now, tuple(sharers)), now)
            return []
        return self._note_quiet(coupon, sharers, now, now)

    def _note_quiet(self, coupon: str, sharers: Iterable[str], when: int, now: int) -> list[str]:
        """Note the quiet sharers of a burst of ``coupon`` at ``when`` (its
        sharers: ``sharers``), judged by who was sent a share by ``now``,
        when the burst is quiet; the accounts whose record changed."""
        sharers = list(sharers)
        quiet = [u for u in sharers if not self.heard(u, now)]
        if not self._is_quiet(len(self._unpassed(coupon, quiet, now)), len(sharers)):
            return []
        if self.passers is not None:
            self.passers.note(coupon, quiet, len(sharers), now)
        changed = []
        for u in quiet:
            bursts = self.quiet.touch(u, now)
            held = bursts.get(coupon, now)
            if held is None or held < len(quiet):
                bursts.put(coupon, len(quiet), when)
                changed.append(u)
        return changed

    def _passed_on(self, share: Share, now: int) -> list[str]:
        """Note who ``share``'s sharer heard its coupon from, when it heard it
        from an unheard sharer of the coupon within a day; and the recipients
        of ``share`` when its sharer is unheard. The accounts whose record
        changed (the sharer whose recipient passed the coupon on).

        Why: a real launch's first sharers are often sent nothing in the
        window (a user who shares once a month), so its first minutes can be
        a quiet burst; but a real sharer's friends pass the coupon on, and a
        group's targets do not (fresh_bursts.py reads the same cascade). Such
        a sharer counts as heard for that coupon (:meth:`_passer`), as if it
        had been sent a share. To fake it, a group must have, per member, an
        account it shares the coupon to share it in turn: a share received
        and one made per member, what it already costs to have each member
        sent a share. A member passing the coupon to a fellow member makes
        that member heard, which the quiet rule reads anyway. Only the
        coupon passed on is excused, not the account's other quiet bursts or
        its repeated meetings.
        """
        if self.audience is None or self.passers is None:
            return []
        coupon, user = share.coupon, share.user
        heard_from = self.audience.peek(coupon, now)
        passer = heard_from.get(user, now) if heard_from is not None else None
        changed: list[str] = []
        if passer is not None and passer != user and self._unpassed(coupon, (passer,), now):
            self.passers.mark(coupon, passer, now)
            changed += self._rejudge(coupon, passer, now)
        if share.allowed and share.recipients and not self.heard(user, now):
            day = self.crowds.peek(coupon, now)
            # (one who shared the coupon today did not hear it from this sharer;
            # the day's sharers are kept with no value, so their keys are read)
            before = set(day.keys(now)) if day is not None else set()
            audience = self.audience.touch(coupon, now)
            for r in share.recipients:
                if r != user and r not in before and audience.get(r, now) is None:
                    audience.put(r, user, now)
        return changed

    def _rejudge(self, coupon: str, passer: str, now: int) -> list[str]:
        """Judge ``coupon``'s last quiet burst again now that ``passer``'s
        recipient passed the coupon on; when it is no longer quiet, its
        sharers' records of it go. The accounts whose record changed."""
        held = self.passers.burst_of(coupon, passer, now) if self.passers is not None else None
        if held is None:
            return []
        quiet, sharers = held
        if self._is_quiet(len(self._unpassed(coupon, quiet, now)), sharers):
            return []
        assert self.passers is not None
        self.passers.forget(coupon)
        changed = []
        for u in quiet:
            bursts = self.quiet.peek(u, now)
            if bursts is not None and bursts.pop(coupon) is not None:
                changed.append(u)
        return changed

    def _unpassed(self, coupon: str, quiet: Iterable[str], now: int) -> list[str]:
        """The accounts of ``quiet`` none of whose recipients passed ``coupon`` on (:meth:`_passed_on`)."""
        return self.passers.unpassed(coupon, quiet, now) if self.passers is not None else list(quiet)

    def _is_quiet(self, quiet: int, sharers: int) -> bool:
        """Whether a burst of ``sharers`` sharers, ``quiet`` of them sent
        nothing in the window, is quiet.

        Either ``lockstep_quiet`` unheard sharers, ``lockstep_quiet_share``
        of the burst, or ``lockstep_quiet_whole`` sharers none of whom was
        sent anything. Why the second: a group of eight to ten accounts, a
        few of them missing each burst, brings five to seven to one and
        never reaches eight; it passed its camouflage until its second
        burst. A real burst of seven on a calm coupon mostly holds someone a
        friend shared to; the smaller the burst, the less a chance run of
        unheard users says, so all of them must be. To evade it a group
        must keep its bursts under seven, or have a member sent a share (a
        share it must make, which the other rules read).
        """
        if self.quiet_min > 0 and quiet >= self.quiet_min and quiet >= self.quiet_share * sharers:
            return True
        return 0 < self.quiet_whole <= quiet and quiet == sharers

    def _judge_early(self, now: int) -> list[str]:
        """Judge, once, the bursts kept from before the engine had seen
        ``lockstep_quiet_after_ms`` of history, as of ``now``: who was sent
        nothing in all that history is as unheard as the sharers of a burst
        judged then (a group whose first burst fell in the first two days
        of the history passed its camouflage until its second burst). Only
        coupons still calm count; the accounts whose record changed."""
        early, self.early = self.early, None
        assert early is not None
        changed: list[str] = []
        for coupon, _, (when, sharers) in early.entries(now):
            if (self.crowded.get(coupon, now) or CALM) == CALM:
                changed += self._note_quiet(coupon, sharers, when, now)
        return changed

    def _quiet_partners(self, user: str, now: int) -> tuple[int, int]:
        """The most fellow quiet sharers ``user`` had in a quiet burst of a
        coupon still calm, and when that burst was noted (0, now: none)."""
        bursts = self.quiet.peek(user, now)
        best, when = 0, now
        for coupon, t, n in bursts.entries(now) if bursts is not None else ():
            if (self.crowded.get(coupon, now) or CALM) == CALM and n - 1 > best:
                best, when = n - 1, t
        return best, when

    def _meet(self, user: str, partner: str, coupon: str, now: int) -> None:
        partners = self.partners.touch(user, now)
        coupons = partners.get(partner, now) or ()
        if coupon not in coupons:
            coupons = (*coupons, coupon)[-(self.needed + 2):]
        partners.put(partner, coupons, now)

    def reading(self, user: str, now: int, reads: _Reads | None = None) -> Reading:
        """``user``'s value at ``now``."""
        # Partners met on several coupons, and partners met once who are core
        # members: a group's later members are flagged as soon as its first
        # few meet again, not only from its third burst on.
        # A single meeting with a core member counts only while meetings are a
        # fair part of the account's sharing: a real user who once shared a
        # coupon in the middle of a group's burst, among twenty other coupons,
        # is no new member of the group (it was refused for a month for it).
        reads = reads or _Reads(self, now)
        partners = self.partners.peek(user, now)
        if partners is None:
            return Reading(user, 0, now + self.window)
        entries = list(partners.entries(now))
        met_on = {c for _, _, coupons in entries for c in coupons}
        met_on = {c.removesuffix(AFTER_RUSH) for c in met_on}  # a coupon met on before and after its rush is one
        shared = self.shared.peek(user, now)
        heard = self.heard(user, now)
        member = len(met_on) >= self.member_share * (len(shared.keys(now)) if shared else 0) and not heard
        repeated = reads.together_of(user)
        touches = []
        for partner, t, coupons in entries:
            if partner in repeated or (member and reads.count(coupons, BUSY) and reads.core(partner)):
                touches.append(t)
        quiet, noted = (0, now) if heard else self._quiet_partners(user, now)
        if quiet > len(touches):
            # (its quiet burst's evidence leaves the window with the burst)
            return Reading(user, quiet, noted + self.window)
        return Reading(user, len(touches), until_of(touches, self.window, now))

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []


class _Reads:
    """What one share reads of the state between two changes to it, each
    answer computed once: a burst's members are read one after another and
    ask about the same partners (is it a core member?) and the same coupons
    (did it turn out a crowd?) over and over, which made the signal cost
    grow with the square of the partners kept."""

    __slots__ = ("_core", "_crowded", "_together", "lockstep", "now")

    def __init__(self, lockstep: Lockstep, now: int) -> None:
        self.lockstep, self.now = lockstep, now
        self._core: dict[str, bool] = {}
        self._crowded: dict[str, int] = {}
        self._together: dict[str, set[str]] = {}

    def _hit(self, coupon: str) -> int:
        """How crowded ``coupon`` turned out (CALM when never), read once per read."""
        hit = self._crowded.get(coupon)
        if hit is None:
            hit = self._crowded[coupon] = self.lockstep.crowded.get(coupon, self.now) or CALM
        return hit

    def count(self, coupons: Met, crowd: int = RUSH) -> int:
        """Coupons met on that did not turn out ``crowd`` (or more)."""
        hit = self._hit
        return sum(hit(c) < crowd for c in coupons)

    def live(self, coupons: Met) -> list[str]:
        """The coupons of ``coupons`` that did not turn out a rush, sorted."""
        hit = self._hit
        return sorted(c for c in coupons if hit(c) < RUSH)

    def together_of(self, user: str) -> set[str]:
        """``user``'s partners met on several coupons together (:meth:`together`)."""
        hit = self._together.get(user)
        if hit is None:
            hit = self._together[user] = self.together(user)
        return hit

    def together(self, user: str, stop: int = 0) -> set[str]:
        """``user``'s partners met on ``lockstep_coupons`` coupons (not
        rushes) that were met on the same coupons as ``lockstep_together``
        - 1 other such partners or more; with ``stop``, as soon as that
        many are found.

        Why together: a group meets as a group, so each member met its
        partners on the same bursts, burst after burst. A prolific real user
        (forty coupons a month, heard from by dozens of friends) runs into
        other prolific sharers by chance, and now and then into the same one
        twice, but each such pair on coupons of its own: three chance
        partners met twice made it a lockstep member (most of this signal's
        organic refusals on the design workloads). To evade this a group
        must keep any three of its members from meeting in two of its
        bursts, which leaves bursts of strangers, not a group.
        """
        step = self.lockstep
        partners = step.partners.peek(user, self.now)
        if partners is None:
            return set()
        needed, want = step.needed, max(1, step.together)
        found: set[str] = set()
        # a set of `needed` coupons met on -> the partners met on them (at
        # most 6 sets a partner: 4 coupons are kept)
        met_on: dict[tuple[str, ...], list[str]] = {}
        for partner, coupons in partners.items(self.now):
            if len(coupons) < needed:
                continue  # (most partners were met once)
            live = self.live(coupons)
            for combo in combinations(live, needed):
                fellows = met_on.setdefault(combo, [])
                fellows.append(partner)
                if len(fellows) >= want:
                    found.update(fellows)
            if stop and len(found) >= stop:
                break
        return found

    def core(self, user: str) -> bool:
        """Met at least ``lockstep_core`` partners on several coupons each,
        together (:meth:`together`)."""
        hit = self._core.get(user)
        if hit is None:
            step = self.lockstep
            # (Stops at the core'th such partner: a group's members have dozens.)
            hit = step.core <= 0 or len(self.together(user, stop=step.core)) >= step.core
            self._core[user] = hit
        return hit
