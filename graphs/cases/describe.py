"""One case described: its kind, score, members, one-line summary and stats.

The kind says what ties the group, checked in this order:

- ``farm``: accounts on shared devices (a device used by 3+ of the case's
  accounts, and such devices tie at least half of them);
- ``star``: one or two sharers carry the case's share edges to many sinks;
- ``hoarder``: many feeders and at most half as many recipients (fresh
  accounts feeding a few hoarders);
- ``lockstep``: accounts tied by sharing the same coupons at the same time
  (at least half of the case's accounts);
- ``ring``: a dense block of sharer -> recipient edges (3+ on each side,
  30 %+ of the pairs);
- ``linked``: anything else that is connected.

The score grows with how anomalous the members are and how many there are:
mean member anomaly x log2(1 + members).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.cases.evidence import evidence, subgraph
from graphs.cases.parts import CaseParts
from graphs.events.table import EventTable

__all__ = ["case_kind", "describe", "span_text"]

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


def span_text(seconds: float) -> str:
    """A duration as people say it.

    >>> span_text(30), span_text(660), span_text(5 * 3600), span_text(6 * 86400)
    ('1 min', '11 min', '5 h', '6 days')
    """
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{math.ceil(seconds / 86400 - 1e-9)} days"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def case_kind(n_users: int, farm_users: int, senders: Ints, receivers: Ints, lockstep_users: int) -> str:
    """The kind of a case from what ties it (see the module's docstring).

    >>> case_kind(10, 10, np.array([], np.int64), np.array([], np.int64), 0)
    'farm'
    >>> case_kind(30, 0, np.array([1] * 40), np.arange(40), 0)
    'star'
    """
    pairs = np.unique(senders * (int(receivers.max(initial=0)) + 1) + receivers).size if senders.size else 0
    s, r = np.unique(senders).size, np.unique(receivers).size
    if farm_users >= 2 and 2 * farm_users >= n_users:
        return "farm"
    if senders.size and s <= 2 and r >= 5 * s:
        return "star"
    if s >= 4 and 2 * r <= s:
        return "hoarder"
    if lockstep_users >= 2 and 2 * lockstep_users >= n_users:
        return "lockstep"
    if s >= 3 and r >= 3 and pairs >= 0.3 * s * r:
        return "ring"
    return "linked"


def describe(t: EventTable, parts: CaseParts, names: NDArray[np.object_], scores: Floats, kols: Floats,
             p: Any) -> dict[str, Any]:
    """The stored form of one case (without its id): kind, score, summary, members, stats,
    evidence and subgraph. ``names``, ``scores`` and ``kols`` are over all nodes (users, then
    devices); ``p`` is the :class:`graphs.cases.build.CaseParams`."""
    nu = t.n_users
    users, devices = parts.nodes[parts.nodes < nu], parts.nodes[parts.nodes >= nu] - nu
    dev, usr, _count = parts.device_pairs
    # Per-case work stays proportional to the case: no array the size of the whole graph here.
    devs, per_device = np.unique(dev, return_counts=True)
    farm_devices = devs[per_device >= 3]
    farm_users = np.unique(usr[np.isin(dev, farm_devices)]).size
    senders, receivers = t.edge_src[parts.share_edges], t.edge_dst[parts.share_edges]
    lock_users = np.unique(np.concatenate(parts.lockstep)).size
    kind = case_kind(users.size, farm_users, senders.astype(np.int64), receivers.astype(np.int64), lock_users)

    ev = parts.events
    coupon_ids, coupon_counts = np.unique(t.coupon[ev], return_counts=True)
    top = int(coupon_ids[np.argmax(coupon_counts)]) if ev.size else 0
    n_coupons = int(coupon_ids.size)
    coupon = f"coupon {t.coupons[top]}" if ev.size else "no coupon"
    if n_coupons > 1:
        coupon += f" and {_plural(n_coupons - 1, 'other')}"
    first, last = (float(t.ts[ev].min()), float(t.ts[ev].max())) if ev.size else (0.0, 0.0)
    span = span_text(last - first)
    recipients = int(np.unique(t.edge_dst[parts.out_edges]).size)
    s_n, r_n = int(np.unique(senders).size), int(np.unique(receivers).size)
    accounts, on = _plural(int(users.size), "account"), _plural(int(devices.size), "device")
    if kind == "farm":  # the accounts on the devices (their recipients may be members too, as sinks)
        on_devices = _plural(int(np.unique(usr).size), "account")
        summary = f"{on_devices} on {on} sharing {coupon} to {recipients} recipients within {span}"
    elif kind == "star":
        summary = (f"{_plural(s_n, 'account')} spraying {coupon} to {recipients} recipients "
                   f"({r_n} of them sinks in this case) within {span}")
    elif kind == "hoarder":
        summary = f"{s_n} accounts feeding {coupon} to {_plural(r_n, 'hoarding account')} within {span}"
    elif kind == "ring":
        summary = f"{s_n} accounts sharing {coupon} to the same {r_n} recipients within {span}"
    elif kind == "lockstep":
        summary = (f"{accounts} sharing {coupon} in lockstep (within {p.lockstep_window_s:g} s of each "
                   f"other) within {span}")
    else:
        summary = f"{accounts} on {on} linked by shares, sharing {coupon} to {recipients} recipients within {span}"

    node_scores = scores[parts.nodes]
    order = np.lexsort((parts.nodes, -node_scores))
    members = [{"node": str(names[i]), "kind": "user" if i < nu else "device",
                "anomaly": round(float(scores[i]), 4), "kol": round(float(kols[i]), 4)}
               for i in parts.nodes[order].tolist()]
    score = float(node_scores.mean()) * math.log2(1 + len(members))
    stats = {"users": int(users.size), "devices": int(devices.size), "sharers": int(np.unique(t.sharer[ev]).size),
             "recipients": recipients, "coupons": n_coupons,
             "first_ts": round(first * 1000), "last_ts": round(last * 1000)}
    return {"kind": kind, "score": round(score, 4), "summary": summary, "members": members, "stats": stats,
            "evidence": evidence(t, parts, p.evidence),
            "subgraph": subgraph(t, parts, names, scores, kols, p.subgraph_nodes, p.subgraph_edges)}
