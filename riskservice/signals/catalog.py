"""The signals, their windows, bounds and floors, in one place.

A signal's *floor* is the smallest value the consumer publishes: below it
nothing is written, so Redis holds values only for the few entities that
look suspicious. A policy threshold below the floor could never fire, and is
refused when the policy is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DAY_MS", "FLOORS", "STANDING_LOST", "SignalConfig"]

DAY_MS = 86_400_000

# Smallest published value, per signal rule (contract.SIGNAL_FIELDS).
FLOORS: dict[str, int] = {
    "device_rotation": 4,
    "lockstep": 2,
    "sink_feeder": 1,
    "dead_recipients": 2,
    "coupon_repeat": 3,
    # On the board (recipients.py, fresh_bursts.py), judged from the worker's copy.
    "sink_recipient": 3,
    "fresh_burst": 4,
    "ring_block": 3,
    "device_pool": 5,
}

# A sharer's signal at or above this value takes its fan-out waiver away
# (waiver.py): the shipped default thresholds of the sharers' signals. A
# value under its floor is not published; between the floor and this, it is
# a hint that no default rule enforces, and a group admin pushing this week's
# coupon to the group three days running must not lose its standing for it.
STANDING_LOST: dict[str, int] = {
    "lockstep": 3,
    "sink_feeder": 2,
    "dead_recipients": 3,
    "coupon_repeat": 4,
}


@dataclass(frozen=True)
class SignalConfig:
    """Windows (event time) and capacities of the signal engine's state.

    The capacities bound the memory per tracked entity; the entity caps bound
    the number of entities (the least recently active go first).
    """

    # How long evidence counts. Rings spread their work over weeks, so the
    # graph signals look back as far as share events are kept.
    window_ms: int = 30 * DAY_MS
    rotation_window_ms: int = 30 * DAY_MS
    # device_rotation (rotation.py): an account on the device does not count
    # when it heard from as many accounts as the device has, none of them on
    # it nor on a device of the floor's accounts, nor without its standing (a
    # family member with friends of its own; a farm's accounts hear from the
    # farm, if at all).
    rotation_own_friends: bool = True
    repeat_window_ms: int = 3 * DAY_MS
    # Shares of one coupon closer than this to the sharer's previous one are
    # one sitting (coupon_repeat counts sittings).
    repeat_gap_ms: int = 60 * 60_000
    # Shares of one coupon this close together are one burst.
    burst_ms: int = 15 * 60_000
    # A pair of accounts counts as lockstep from this many distinct coupons shared in the same bursts.
    lockstep_coupons: int = 2
    # ... and an account with this many such partners is a core member.
    lockstep_core: int = 2
    # A partner met once counts when it is a core member, and only while the
    # coupons the account met anyone on are this part of those it shared.
    lockstep_member_share: float = 0.25
    # A partner met on `lockstep_coupons` coupons counts only when at least
    # this many partners (itself included) were met on the same coupons: a
    # group's members meet together, burst after burst, while two prolific
    # real users run into each other now and then by chance, each pair on
    # coupons of its own (lockstep.py). 1: every such partner counts.
    lockstep_together: int = 2
    # A *quiet burst* (lockstep.py): a burst of one calm coupon with at least
    # this many sharers that nobody shared to in the window, at least
    # `lockstep_quiet_share` of its sharers; each of them counts its fellow
    # quiet sharers as partners while it hears from nobody (0 turns it off).
    # Judged once the engine has seen `lockstep_quiet_after_ms` of history
    # (before that, everybody looks unheard).
    lockstep_quiet: int = 8
    lockstep_quiet_share: float = 0.8
    lockstep_quiet_after_ms: int = 2 * DAY_MS
    # A coupon this crowded (distinct sharers in a day) is a crowd: a flash
    # sale or a popular coupon brings strangers together, so meeting on it is
    # no evidence of a group (the batch side weights crowd meetings down for
    # the same reason). Rings push their own coupons in groups of a few dozen.
    crowd_sharers: int = 40
    # ... and one this crowded within `rush_ms` is a rush (a flash sale): a
    # coupon crowded over a day but not at once is a popular coupon, which a
    # group can ride (its repeated meetings on it still count).
    rush_ms: int = 60 * 60_000
    # A sink: a recipient reached by at least this many distinct sharers, with
    # at least `sink_receipts` reported receipts of which it claimed on
    # average at least `sink_claim` (each receipt credited claimed / delivered).
    sink_sharers: int = 3
    sink_receipts: int = 3
    sink_claim: float = 0.5
    # A sharer's sinks count only while they are at least this part of the
    # recipients it reached (a hub reaching hundreds feeds a few popular ones).
    sink_fed_share: float = 0.1
    # A sink counts for a sharer only when its other sharers feeding a second
    # sink (a ring's block) are at least this part of its other sharers: a
    # popular real claimer is reached by many friends, a few of whom happen
    # to reach another heavy claimer; a ring's sinks are fed by the ring.
    sink_block_share: float = 1 / 3
    # ... and at least this many of them: a block is the sharer and two
    # others feeding a second sink too. One other friend of a popular real
    # claimer who also reaches a second heavy claimer is chance (its sinks
    # have three or four sharers, so one is a third); a ring's members all
    # feed its sinks.
    # (A block member's second sink is also judged from its own side, with
    # `block_share` below: half or more of its sharers must be the ring's.)
    sink_block_min: int = 2
    # Sinks judged from their inflow (recipients.py): a sharer is fresh when
    # it received nothing in the window and first shared at most `fresh_ms`
    # ago, judged only for accounts first seen `fresh_after_ms` after the
    # consumer's history began (before that, everybody looks new).
    fresh_ms: int = 3 * DAY_MS
    fresh_after_ms: int = 2 * DAY_MS
    # A sink: this many fresh sharers, at least this part of its sharers,
    # with `sink_receipts` reports crediting on average `sink_claim`.
    sink_fresh: int = 3
    sink_fresh_share: float = 0.5
    # A burst (shares of one coupon within `burst_ms`) of at least this many
    # fresh accounts, half of its sharers or more (fresh_bursts.py).
    fresh_burst: int = 4
    # ... whose fresh accounts stay flagged this long (fresh_bursts.py). The
    # evidence is the burst: `fresh_ms` would end the flag when its accounts
    # are no longer fresh, leaving their later shares to lockstep (repeated
    # meetings, quiet bursts); a quiet real user among a launch's first
    # sharers shares its next coupon days later, and was refused for it.
    fresh_burst_ms: int = 30 * DAY_MS
    # ... whose flag goes when a recipient of its share of the coupon shares
    # the coupon too (a real sharer's cascade), judged over a day from the
    # recipients of the coupon's fresh sharers (at most this many per coupon).
    launch_audience: int = 256
    # A ring sink (blocks.py): a heavy-claiming recipient (`sink_receipts`,
    # `sink_claim`) whose sharers also reach its *fellows* (other recipients
    # reached by `block_fellow` of them, crediting `sink_claim` on average
    # over `block_fellow_receipts` reports or more); the sharers that do are
    # its block, a ring when they are `block_members` or more and at least
    # `block_share` of its sharers.
    block_members: int = 3
    block_share: float = 0.5
    block_fellow: int = 3
    block_fellow_receipts: int = 2
    # ... and it has at least this many fellows (a ring's sharers feed many
    # sinks; real friends of a popular claimer meet on one common friend).
    block_fellows: int = 2
    # ... and the sink itself this many reports (as `sink_receipts`).
    block_receipts: int = 3
    # A ring sink's fellows are flagged as members too (a ring whose targets
    # are its own members: their next shares are the ring's).
    block_fellows_flagged: bool = True
    # Closed circles (circles.py): a share naming `circle_recipients` or more
    # accounts, each of `circle_sharers` or more other sharers having named
    # `circle_named` or more of them and nobody else having shared to them;
    # or a share whose recipients' other sharers, `circle_fed_sharers` or
    # more, each reached `circle_named` or more of the sharer's recipients;
    # in both, nobody outside the circle having shared to its sharers. A
    # sharer naming a circle's recipient joins it (`circle_joins`). Judged
    # only for shares naming at most `circle_max_recipients`: a share naming
    # more is a group post (the customer's fan-out rule already asks an SMS
    # of it), and a group's members, heard from only by its admins, look
    # closed (group admins at 10 000 users were refused with 32); it also
    # bounds the work per share.
    circles: bool = True
    circle_recipients: int = 3
    circle_sharers: int = 2
    circle_named: int = 2
    # In one share, the other sharers that named `circle_named` or more of
    # its recipients may be only `circle_share` of those that named any, when
    # none of the others hears from outside the circle either (circles.py).
    circle_share: float = 0.5
    circle_fed_sharers: int = 3
    circle_joins: bool = True
    # ... and none of a circle's sharers posted to a group (a share naming
    # more than `circle_max_recipients`) in the window (circles.py).
    circle_no_posters: bool = True
    circle_max_recipients: int = 10
    # Claiming cores (cores.py): a sharer whose inflow, walked back for the
    # window, is closed (at most `core_reach` accounts, each fed from inside)
    # and whose strongly connected part of it has `core_members` or more
    # accounts, `core_cycles` or more independent cycles, receipts claimed
    # `core_claim` or more on average, and `core_coupons` distinct coupons per
    # member on its links (a real cascade passes one coupon around): a ring
    # whose targets are its own members. Its members are published as a
    # ring's (board kind m).
    cores: bool = True
    core_reach: int = 32
    core_members: int = 5
    core_cycles: int = 3
    core_claim: float = 0.4
    core_coupons: float = 1.0
    # A pool of devices (pools.py): the devices of a device's accounts and
    # their accounts; published when `pool_shared` of its devices are used by
    # two accounts or more and it has the floor's accounts (at most
    # `pool_cap` counted).
    pool_shared: int = 3
    # ... its devices found in this many rounds from the device's accounts
    # (each round: the devices of the accounts found, then their accounts);
    # one round saw a rotating ring's young pool only in part (pools.py).
    pool_rounds: int = 2
    pool_cap: int = 64
    # ... and `pool_linked` of its accounts share from two of its devices or
    # more (a pool rotates accounts over phones; a family's members use the
    # family phone and their own, and are three at most).
    pool_linked: int = 3
    # ... not counting a linked account that heard from as many accounts
    # outside the pool as the pool has, or more (a family member with its own
    # friends; a rotating ring's accounts share among themselves).
    pool_own_friends: bool = True
    # How long a fresh account that shared to a sink stays flagged.
    feeder_ms: int = 3 * DAY_MS
    # Fan-out waiver (waiver.py): reports of shares delivered to at least
    # `waiver_delivered` people (more than the customer's fan-out limit of 10),
    # organic when someone and at most `waiver_claim` of them claimed; published
    # from `waiver_floor` of them (the policy's fan_out.waiver_shares decides
    # how many waive the rule).
    waiver_delivered: int = 11
    waiver_claim: float = 0.8
    waiver_floor: int = 1
    waiver_reports: int = 32
    # Most accounts on the board (board.py) at once.
    board_cap: int = 10_000
    # Unclaimed receipts from one sharer after which a recipient is dead.
    dead_receipts: int = 2
    # ... counted only once this many of the sharer's reports said nobody
    # claimed: two unclaimed group shares to the same few friends who claim
    # now and then make every one of them "dead" at once (dead.py).
    dead_reports: int = 3
    # ... and only while such reports are at least this part of the sharer's
    # last `dead_memory` reports: a group admin's sends are mostly claimed by
    # someone, a sprayer's mostly by nobody (dead.py).
    dead_share: float = 0.5
    dead_memory: int = 32
    # Each account that shared to the sharer in the window offsets one of its
    # dead recipients (dead.py).
    dead_offset: bool = True
    # Bounds per entity.
    users_per_device: int = 64
    coupons_per_user: int = 64
    shares_per_coupon_repeat: int = 64
    sharers_per_burst: int = 64
    partners_per_user: int = 64
    recipients_per_sharer: int = 128
    # The sinks a sharer fed, remembered by name for `sink_feeder`'s blocks
    # (whom it meets on them): the most recent few; a ring's member feeds
    # a handful (at most 5 on the workloads read).
    sinks_per_sharer: int = 8
    sharers_per_recipient: int = 32
    receipts_per_recipient: int = 64
    devices_per_user: int = 4
    flagged_users_per_device: int = 16
    # Bounds on the number of entities of each kind, and on remembered shares.
    entities: int = 1_000_000
    coupons: int = 100_000
    shares: int = 500_000
    share_memory_ms: int = 2 * DAY_MS
    # A closed circle's sharers (circles.py) are those that named its
    # accounts with coupons that are no crowd's (`crowd_sharers`): a flash
    # sale's fans reach a few members of a real group by chance. (Such a fan
    # still counts among those outside that named them: it can break a
    # circle, not make one.) Off: on the independent workloads it cost a
    # dense ring all its refused shares (6 of 15, mixed 3000 seed 302), whose
    # members had named its targets with a crowd's coupons, and gained no
    # organic share there (docs/signals-history.md).
    circle_no_crowds: bool = False
    # A sink judged from its inflow (recipients.py) loses a piece of
    # evidence per sharer of it that was shared to in the window: a
    # hoarder's feeders hear from nobody, a real claimer's friends do.
    sink_heard: bool = True
    # Quiet bursts (lockstep.py) of the engine's first `lockstep_quiet_after_ms`
    # of history are kept and judged once that much history is seen, by who
    # was sent a share by then (a group's first burst in the first two days
    # of a history passed its camouflage until its second burst).
    lockstep_quiet_early: bool = True
    # A sitting of `coupon_repeat` is at most this long from its first share
    # (0: as long as no hour passes between two shares): a steady pusher who
    # never paused an hour was one sitting for days (repeat.py).
    repeat_sitting_ms: int = 0
    # A crew (repeat.py): on a coupon that this many other accounts pushed in
    # `repeat_crew_sittings` sittings or more in the window, and no crowd, an
    # account's second sitting and later count one more (0 turns it off);
    # accounts that posted to a group (a share naming more than
    # `circle_max_recipients`) in the window are no crew members.
    repeat_crew: int = 2
    repeat_crew_sittings: int = 3
    # A coupon's day crowd (`crowd_sharers`, a *busy* coupon: lockstep.py)
    # counts its sharers apart from its largest burst of the day: a lockstep
    # group of twenty riding a coupon that twenty others share that day made
    # it busy on its own, which excused its quiet burst and its single
    # meetings with its core. A popular coupon's crowd comes over the day.
    lockstep_busy_apart: bool = True
    # A sharer naming a closed circle's recipient joins the circle
    # (`circle_joins`) only while everyone who shared to it in the window is
    # a flagged ring member or sink: a circle's own sharers must be heard by
    # nobody outside it, and a real user who names a friend inside a small
    # circle of friends has friends of its own (circles.py).
    circle_join_closed: bool = True
    # A burst of a calm coupon with at least this many sharers, every one of
    # them sent nothing in the window, is quiet too (lockstep.py), under
    # `lockstep_quiet` (0: off). A group of eight to ten, two in ten of them
    # missing each burst, never brings eight to one; a real burst that small
    # holds someone a friend shared to (slow9).
    lockstep_quiet_whole: int = 7
    # A recipient who shared a coupon at or after the sharer sent it, before
    # the share's report, passed it on: that receipt is not an unclaimed one
    # for it (dead.py). A sprayer's fake recipient would have to reshare
    # every coupon it gets but one, from a device of its own (dead10).
    dead_passed_on: bool = True
    # A quiet burst's sharer (lockstep.py) whose recipient of the burst's
    # coupon passes that coupon on (shares it later, having heard it from
    # this sharer first) counts as heard for that coupon: a real launch's
    # first sharers have friends who pass it on; a group's members are sent
    # nothing, and a member sharing to a fellow member makes it heard anyway.
    lockstep_passed_on: bool = True
    # A fresh burst (fresh_bursts.py) is judged again when a recipient of one
    # of its fresh sharers passes the coupon on: that sharer no longer counts
    # as fresh in it, and when the rest are too few for a fresh burst, every
    # flag the burst gave goes (a real launch's first sharers have friends who
    # pass it on; to break a group's burst so, most of its members would need
    # an account of their own to pass the coupon on, a share made and one
    # received per member, what being sent a share costs anyway).
    fresh_burst_passed_on: bool = True
    # A fresh burst's member is published on the board at its next share
    # after the burst, not at the burst (fresh_bursts.py): that share goes
    # through, the ones after it are judged. A real launch's first sharer who
    # looked fresh shares once or twice a month, and its next share (the
    # launch coupon again, to another chat, or its next coupon days later)
    # was most of this signal's organic refusals; an account made for bursts
    # keeps sharing. A group gains one share per member and burst.
    fresh_burst_next_share: bool = True
    # A sharer whose reports brought at most this part of the claims its
    # recipients' rates from other sharers expect is short of claims: the
    # claims missing count as dead recipients (dead.py; 0: off). A spammer's
    # friends claim other sharers' coupons and not its own; a real user's
    # friends who seldom claim do so from everyone.
    claim_shortfall: float = 0.25
    # ... a recipient's rate counting once it has this many receipts from
    # other sharers in the window.
    claim_known: int = 2
