"""The name, family and analyst sentence of every signal, for both engines.

A :class:`SignalSpec`'s ``detail`` is a ``str.format`` template filled with
the signal's ``value`` and its ``extras`` for one node; the numpy engine
builds :class:`~graphs.signals.signal.Signal` objects from these specs and the
Spark engine renders its rows with the same templates.

Examples
--------
>>> DEVICE_FARM.detail.format(value=9.0)
'9 accounts shared from this device'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIVE_SHARER",
    "ANOMALY_USER",
    "BRIDGE",
    "CLOSED_GROUP",
    "COMMUNITY_HUB",
    "DENSE_BLOCK",
    "DEVICE_FARM",
    "DEVICE_ROTATION",
    "FAKE_SINK",
    "FEEDER",
    "HOARDER",
    "INFLUENCE",
    "KOL_USER",
    "LINKED_ACCOUNT",
    "LOCKSTEP",
    "LOW_CLAIM",
    "NON_DECAYING_BURST",
    "REFUSED",
    "SECONDARY_PROPAGATION",
    "STAR_SPRAY",
    "USER_FARM",
    "SignalSpec",
]


@dataclass(frozen=True)
class SignalSpec:
    """What an analyst sees of one signal: its name, family and sentence template."""

    name: str
    family: str  # "anomaly" or "kol"
    detail: str
    extras: tuple[str, ...] = ()


DEVICE_FARM = SignalSpec("device_farm", "anomaly", "{value:.0f} accounts shared from this device")
USER_FARM = SignalSpec("device_farm", "anomaly", "uses a device shared by {value:.0f} accounts")
DEVICE_ROTATION = SignalSpec("device_rotation", "anomaly",
                             "rotates {value:.0f} devices shared with {co_users:.0f} other accounts", ("co_users",))
REFUSED = SignalSpec("refused_attempts", "anomaly",
                     "{value:.0f} of {attempts:.0f} share attempts were challenged or blocked", ("attempts",))
LOW_CLAIM = SignalSpec("low_claim_rate", "anomaly",
                       "{claims:.0f} claims from {sent:.0f} recipients (typical rate {p0:.0%})",
                       ("claims", "sent", "p0"))
STAR_SPRAY = SignalSpec("star_spray", "anomaly",
                        "shared to {value:.0f} distinct recipients; claim rate {gap:.0%} below typical; "
                        "{owned:.0f} of them hear only from it ({owned_share:.0%} of its deliveries)",
                        ("gap", "owned", "owned_share"))
DENSE_BLOCK = SignalSpec("dense_block", "anomaly",
                         "member of dense block #{rank:.0f} ({size:.0f} members, density {value:.2f}, "
                         "closure {closure:.0%})", ("rank", "size", "closure"))
CLOSED_GROUP = SignalSpec("closed_group", "anomaly",
                          "one of {size:.0f} accounts that share with each other ({value:.1f} shares inside "
                          "per account) and hear from nobody else", ("size",))
LOCKSTEP = SignalSpec("lockstep", "anomaly",
                      "shared {value:.0f} coupons at the same moment as the same account; "
                      "{partners:.0f} accounts did so on 2+ coupons; "
                      "its burst held {joined:.0f} accounts' worth of lockstep", ("partners", "joined"))
NON_DECAYING_BURST = SignalSpec("non_decaying_burst", "anomaly",
                                "shared one coupon {n:.0f} times over {h:.0f} h without decay "
                                "(late/early ratio {value:.2f}, {late6:.0%} after its first 6 h)",
                                ("n", "h", "late6"))
FAKE_SINK = SignalSpec("fake_sink", "anomaly",
                       "{value:.0f} receipts came from suspicious sharers ({frac:.0%} of all), "
                       "up to {repeat:.0f} from the same one", ("frac", "repeat"))
HOARDER = SignalSpec("hoarder", "anomaly",
                     "{value:.0f} of its {n_in:.0f} sharers are fresh accounts; claimed {claims:.1f} of "
                     "{got:.0f} receipts; shares nothing itself", ("n_in", "claims", "got"))
FEEDER = SignalSpec("feeder", "anomaly",
                    "a fresh account (freshness {fresh:.2f}) sharing to a suspected hoarder ({value:.2f})",
                    ("fresh",))
LINKED_ACCOUNT = SignalSpec("linked_account", "anomaly",
                            "an account that used this device has anomaly {value:.2f} from its own behaviour")
SECONDARY_PROPAGATION = SignalSpec("secondary_propagation", "kol",
                                   "{shares:.0f} later shares and {claims:.0f} claims descend from its shares",
                                   ("shares", "claims"))
COMMUNITY_HUB = SignalSpec("community_hub", "kol", "{value:.0f} contacts inside its community of {size:.0f}",
                           ("size",))
BRIDGE = SignalSpec("bridge", "kol", "links into {value:.0f} communities (participation {part:.2f})", ("part",))
ACTIVE_SHARER = SignalSpec("active_sharer", "kol", "{value:.0f} delivered shares")
INFLUENCE = SignalSpec("influence", "kol",
                       "influence rank {value:.1f}x the average user's: its recipients reach many in turn")

#: a user's signals in the order the rows list them (before sorting by score)
ANOMALY_USER = (USER_FARM, REFUSED, LOW_CLAIM, STAR_SPRAY, DENSE_BLOCK, LOCKSTEP, NON_DECAYING_BURST, DEVICE_ROTATION,
                CLOSED_GROUP, FAKE_SINK, HOARDER, FEEDER)
KOL_USER = (SECONDARY_PROPAGATION, COMMUNITY_HUB, BRIDGE, ACTIVE_SHARER, INFLUENCE)
