"""Thresholds of the batch scores, in one place, with the reason for each.

They are policy, not magic: a deployment can pass its own
:class:`ScoringParams` (for instance from the service's policy file).  Every
ramp ``(lo, hi)`` maps a measure onto a score contribution: 0 at ``lo`` or
below, 1 at ``hi`` or above.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScoringParams"]


@dataclass(frozen=True)
class ScoringParams:
    """Thresholds and windows of the KOL and anomaly scores.

    Examples
    --------
    >>> ScoringParams().farm_users
    (3.0, 8.0)
    """

    #: distinct accounts on one device: a family shares a phone, a farm does not
    #: (more than 5 accounts on a device in 24 h is already challenged by the service)
    farm_users: tuple[float, float] = (3.0, 8.0)
    #: device rotation: devices one account used (a phone and a tablet are two) and the
    #: distinct other accounts on them (a family is two or three)
    rotation_devices: tuple[float, float] = (2.0, 3.0)
    rotation_co_users: tuple[float, float] = (3.0, 6.0)
    #: share of a node's attempts that the online rules refused, and how many
    refused_frac: tuple[float, float] = (0.2, 0.6)
    refused_count: tuple[float, float] = (1.0, 4.0)
    #: pseudo-count of the prior on a sharer's claim rate (shrinks small samples)
    claim_prior: float = 10.0
    #: relative shortfall ``1 - rate / typical rate`` that is suspicious
    low_claim_gap: tuple[float, float] = (0.5, 0.85)
    #: -log10 of the binomial probability of so few claims at the typical rate, a share counting
    #: as at most the graph's mean recipients per share (one unclaimed post to a chat of thirty is
    #: one unlucky share); with chat posts no longer counted thirty times, 1.0 -> 2.5 (was
    #: 1.3 -> 3.0) lets a user spam a few friends 30 to 40 times before it scores
    low_claim_log10p: tuple[float, float] = (1.0, 2.5)
    #: low claims are judged per kind of share, named recipients (chats, groups) apart from
    #: broadcasts (a timeline post: a count of who may see it); a kind with fewer sharers of 5+
    #: recipients than this has no typical rate of its own and is judged by the whole graph's
    low_claim_min_sharers: int = 5
    #: distinct recipients that make a spray, and the claim shortfall a spray needs
    star_fanout: tuple[float, float] = (15.0, 50.0)
    star_claim_gap: tuple[float, float] = (0.3, 0.7)
    #: share of a sharer's recipients it "owns": they hear only from it, more
    #: than once, and never share themselves (a pool of fake sinks)
    star_owned: tuple[float, float] = (0.25, 0.45)
    #: the same owned recipients' share of the sharer's deliveries: a spray pool is sent to
    #: again and again, so a sprayer whose camouflage reaches many real users once each still
    #: sends most of its shares to it (a group admin's friends who only hear from the admin
    #: take about half of the admin's deliveries, and the admin has few of them)
    star_owned_share: tuple[float, float] = (0.5, 0.75)
    #: FRAUDAR density ``f(S)/|S|`` of a block (edge weights 1/log(deg + 5))
    dense_density: tuple[float, float] = (0.6, 1.0)
    #: closure: share of the block recipients' incoming weight from the block
    dense_closure: tuple[float, float] = (0.75, 0.9)
    dense_min_side: int = 3
    #: a block with more than this share of all linked users is the whole world
    dense_max_share: float = 0.2
    dense_max_blocks: int = 30
    #: stop looking after this many blocks in a row that are not suspicious
    dense_patience: int = 8
    #: a block's reach: recipients the peel left out that hear from the block alone (this share
    #: of their incoming weight at least), from this many of its sharers at least (two sharers
    #: of a ring's camouflage hit real users by chance), and claim this much of what they got
    #: (a group's targets claim; a real user a farm spammed mostly does not)
    dense_reach: tuple[float, int] = (0.9, 3)
    dense_reach_claim: float = 0.3
    #: closed group: a strongly connected part of the share graph that no share from the rest
    #: enters (but from accounts that never received one); shares inside per member (real
    #: friends passing coupons around: about one), and its size bounds
    closed_per_member: tuple[float, float] = (1.5, 3.0)
    closed_size: tuple[int, int] = (4, 100)
    #: lockstep: events of one coupon within +-window_s of each other
    lockstep_window_s: float = 60.0
    lockstep_min_events: int = 4
    lockstep_excess: float = 3.0
    #: coupons two accounts shared in the same minute; partners doing so repeatedly
    lockstep_coupons: tuple[float, float] = (1.0, 3.0)
    lockstep_partners: tuple[float, float] = (1.0, 3.0)
    lockstep_max_cluster: int = 300
    #: the slow scale: bursts spread over up to ten minutes, against a three-hour context
    lockstep_slow_window_s: float = 600.0
    lockstep_slow_context_s: float = 3 * 3600.0
    #: a cluster of more accounts than this is a crowd (a flash sale), not a group: meeting
    #: in it counts ``crowd / size`` of a coupon
    lockstep_crowd: float = 60.0
    #: one burst shared with accounts in lockstep (summed partner scores ramp) is worth this
    #: much of a lockstep score: less than a repeated meeting, more than nothing
    lockstep_association: float = 0.6
    lockstep_association_group: tuple[float, float] = (1.0, 3.0)
    #: non-decay: late-half / early-half event ratio of one account's pushes of
    #: one coupon (organic shares decay: 60 % in the first 6 h)
    burst_ratio: tuple[float, float] = (0.45, 0.85)
    burst_events: tuple[float, float] = (4.0, 8.0)
    burst_min_span_s: float = 6 * 3600.0
    #: share of an account's pushes of one coupon after its first 6 h (organic: <= 40 %)
    burst_organic_window_s: float = 6 * 3600.0
    burst_late_share: tuple[float, float] = (0.5, 0.75)
    #: fake sinks: receipts from the same suspicious sharer, or from suspicious
    #: sharers in all (their share of all receipts scales the score)
    sink_repeat: tuple[float, float] = (0.0, 3.0)
    sink_receipts: tuple[float, float] = (2.0, 6.0)
    sink_suspect: float = 0.5
    #: fresh sharer: never received a share and active for at most this many days (ramp down)
    fresh_days: tuple[float, float] = (2.0, 6.0)
    #: hoarder: -log10 binomial tail of so many fresh distinct sharers (at the graph's own
    #: share of fresh sharers), and of so many claims at the typical claim rate
    hoarder_fresh_log10p: tuple[float, float] = (3.0, 8.0)
    hoarder_claim_log10p: tuple[float, float] = (1.0, 4.0)
    #: summed suspicion of a passive account's sharers that makes it a hoarder in turn
    hoarder_suspicious_in: tuple[float, float] = (2.0, 6.0)
    #: rounds of suspicion flowing hoarder -> feeder -> hoarder
    receiver_rounds: int = 2
    #: KOL weights of (secondary propagation, hub, bridge, active sharer, influence):
    #: realised propagation dominates, structure breaks ties.  Influence took 0.05 from the
    #: community hub, which ranks the true propagators worse (added on top of the others,
    #: even 0.005 of influence lowered the KOL capture of the quality benchmark)
    kol_weights: tuple[float, float, float, float, float] = (0.55, 0.10, 0.15, 0.15, 0.05)
    #: influence: PageRank over the reversed share graph (recipient -> sharer, weighted by
    #: deliveries); 0.85 is the classic damping (a walk shares on about 6 steps on average)
    pagerank_damping: float = 0.85
    #: power-iteration rounds at most, and the stopping tolerance per node (networkx's
    #: rule: stop when the L1 change of the ranks falls below ``n * tol``)
    pagerank_iter: int = 20
    pagerank_tol: float = 1e-6
    #: label propagation rounds
    lpa_iter: int = 12
