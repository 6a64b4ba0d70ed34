"""A case's evidence (the ties with their times) and its subgraph for drawing, both capped.

Evidence edges are ``{"kind", "source", "source_kind", "target",
"target_kind", ...}``: ``share`` edges carry ``coupon`` and ``ts`` (epoch
ms, earliest first), ``device`` links the number of ``shares`` and their
``first_ts``/``last_ts``, ``lockstep`` links nothing more. The subgraph is
``{"nodes", "edges", "truncated"}`` in the neighbourhood's JSON shape, each
pair of nodes once with a ``weight``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.cases.parts import CaseParts
from graphs.events.table import EventTable

__all__ = ["evidence", "subgraph"]


def _device_times(t: EventTable, events: NDArray[np.int64], dev: NDArray[np.int64],
                  usr: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """First and last share time of each ``(dev, usr)`` link, from the case's events."""
    ev = events[t.device[events] >= 0]
    keys = t.device[ev].astype(np.int64) * t.n_users + t.sharer[ev]
    order = np.lexsort((t.ts[ev], keys))
    keys, ts = keys[order], t.ts[ev][order]
    uniq, start = np.unique(keys, return_index=True)
    if uniq.size == 0:
        return np.zeros(dev.size), np.zeros(dev.size)
    end = np.append(start[1:], keys.size) - 1
    at = np.minimum(np.searchsorted(uniq, dev * t.n_users + usr), uniq.size - 1)
    return ts[start[at]], ts[end[at]]


def evidence(t: EventTable, parts: CaseParts, cap: int) -> dict[str, Any]:
    """The ties of one case with their times, at most ``cap`` edges (device links first)."""
    users, devices, coupons = t.users, t.devices, t.coupons
    edges: list[dict[str, Any]] = []
    dev, usr, count = parts.device_pairs
    first, last = _device_times(t, parts.events, dev, usr)
    for d, u, n, a, b in zip(dev[:cap].tolist(), usr[:cap].tolist(), count[:cap].tolist(),
                             first[:cap].tolist(), last[:cap].tolist(), strict=True):
        edges.append({"kind": "device", "source": str(devices[d]), "source_kind": "device",
                      "target": str(users[u]), "target_kind": "user", "shares": n,
                      "first_ts": round(a * 1000), "last_ts": round(b * 1000)})
    la, lb = parts.lockstep
    room = max(0, cap - len(edges)) // 4  # lockstep pairs say the same thing many times
    for a, b in zip(la[:room].tolist(), lb[:room].tolist(), strict=True):
        edges.append({"kind": "lockstep", "source": str(users[a]), "source_kind": "user",
                      "target": str(users[b]), "target_kind": "user"})
    share = parts.share_edges
    ev = t.edge_event[share]
    order = np.argsort(t.ts[ev], kind="stable")[: max(0, cap - len(edges))]
    for e, k in zip(share[order].tolist(), ev[order].tolist(), strict=True):
        edges.append({"kind": "share", "source": str(users[t.edge_src[e]]), "source_kind": "user",
                      "target": str(users[t.edge_dst[e]]), "target_kind": "user",
                      "coupon": str(coupons[t.coupon[k]]), "ts": round(float(t.ts[k]) * 1000)})
    total = int(dev.size + la.size + share.size)
    return {"edges": edges, "total": total, "truncated": total > len(edges)}


def subgraph(t: EventTable, parts: CaseParts, names: NDArray[np.object_], scores: NDArray[np.float64],
             kols: NDArray[np.float64], max_nodes: int, max_edges: int) -> dict[str, Any]:
    """Members (devices first, then the most anomalous users) and their ties, weighted, capped."""
    nu = t.n_users
    nodes = parts.nodes
    order = np.lexsort((nodes, -scores[nodes], nodes < nu))  # devices (False) first
    keep = nodes[order][:max_nodes]
    kept = set(keep.tolist())
    src = np.concatenate([t.edge_src[parts.share_edges].astype(np.int64), nu + parts.device_pairs[0],
                          parts.lockstep[0]])
    dst = np.concatenate([t.edge_dst[parts.share_edges].astype(np.int64), parts.device_pairs[1],
                          parts.lockstep[1]])
    kind = np.repeat(np.array([0, 1, 2]), [parts.share_edges.size, parts.device_pairs[0].size,
                                           parts.lockstep[0].size])
    weight = np.concatenate([np.ones(parts.share_edges.size), parts.device_pairs[2].astype(np.float64),
                             np.ones(parts.lockstep[0].size)])
    both = np.isin(src, keep) & np.isin(dst, keep)
    keys = (kind[both] * (nu + t.n_devices) + src[both]) * (nu + t.n_devices) + dst[both]
    uniq, inverse = np.unique(keys, return_inverse=True)
    total_w = np.bincount(inverse, weights=weight[both]) if uniq.size else np.zeros(0)
    n_all = nu + t.n_devices
    top = np.argsort(-total_w, kind="stable")[:max_edges]
    names_k = ("share", "device", "lockstep")
    edges = []
    for key, w in zip(uniq[top].tolist(), total_w[top].tolist(), strict=True):
        k, rest = divmod(key, n_all * n_all)
        a, b = divmod(rest, n_all)
        edges.append({"source": str(names[a]), "source_kind": "user" if a < nu else "device",
                      "target": str(names[b]), "target_kind": "user" if b < nu else "device",
                      "kind": names_k[k], "weight": w})
    out_nodes = [{"id": str(names[i]), "kind": "user" if i < nu else "device",
                  "anomaly": round(float(scores[i]), 4), "kol": round(float(kols[i]), 4)} for i in keep.tolist()]
    truncated = len(kept) < nodes.size or len(edges) < uniq.size
    return {"nodes": out_nodes, "edges": edges, "truncated": truncated}
