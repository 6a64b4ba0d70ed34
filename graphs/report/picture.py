"""A capped networkx picture of a few nodes' neighbourhood, for the report.

Analysts and the report look at small pieces of the graph, for which
:func:`neighbourhood_graph` builds a capped networkx ``DiGraph`` around a
few nodes; it never builds the whole graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.events.table import EventTable
from graphs.features.matrices import DEVICE, USER, device_user_matrix, share_matrix

__all__ = ["Node", "neighbourhood_graph"]

Node = tuple[str, str]  # (kind, id as in the events)


def _top_neighbours(row: sp.csr_matrix, limit: int) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    idx, w = row.indices, row.data
    if idx.size > limit:  # a hub: keep its heaviest links, never all 100 k
        keep = np.argpartition(-w, limit - 1)[:limit]
        idx, w = idx[keep], w[keep]
    return idx, w


def neighbourhood_graph(t: EventTable, seeds: Iterable[Node], *, hops: int = 1,
                        max_nodes: int = 200,
                        node_attrs: Mapping[Node, Mapping[str, Any]] | None = None,
                        share: sp.csr_matrix | None = None,
                        device_user: sp.csr_matrix | None = None) -> nx.DiGraph:
    """Induced neighbourhood of ``seeds`` in the share graph, capped.

    Nodes are ``(kind, id)`` tuples (``kind`` is ``"user"`` or ``"device"``)
    with attributes ``kind``, ``label`` and any ``node_attrs``.  Edges are
    sharer -> recipient (``kind="share"``, ``weight`` = deliveries) and
    device -> user (``kind="device"``, ``weight`` = attempts).  Expansion
    keeps the heaviest links first and stops at ``max_nodes`` nodes.
    ``share``/``device_user`` reuse matrices already built from ``t``.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "device_id": "d", "coupon_id": "c",
    ...                   "ts": 0, "recipients": ["b"]}])
    >>> g = neighbourhood_graph(t, [("device", "d")], hops=2)
    >>> sorted(g.edges())
    [(('device', 'd'), ('user', 'a')), (('user', 'a'), ('user', 'b'))]
    """
    s = share_matrix(t) if share is None else share
    st = s.T.tocsr()
    du = device_user_matrix(t) if device_user is None else device_user
    ud = du.T.tocsr()
    uid = {u: i for i, u in enumerate(t.users)}
    did = {d: i for i, d in enumerate(t.devices)}
    nodes: set[tuple[str, int]] = set()
    for kind, name in seeds:
        table = uid if kind == USER else did
        if name in table:
            nodes.add((kind, table[name]))
    frontier = set(nodes)
    for _ in range(hops):
        nxt: list[tuple[float, tuple[str, int]]] = []
        for kind, i in frontier:
            mats = [(s, USER), (st, USER), (ud, DEVICE)] if kind == USER else [(du, USER)]
            for mat, other in mats:
                idx, w = _top_neighbours(mat[i], max_nodes)
                nxt.extend((float(x), (other, int(j))) for j, x in zip(idx, w, strict=True))
        nxt.sort(key=lambda p: -p[0])
        frontier = set()
        for _, node in nxt:
            if len(nodes) >= max_nodes:
                break
            if node not in nodes:
                nodes.add(node)
                frontier.add(node)
    return _induced(t, nodes, s, du, node_attrs or {})


def _induced(t: EventTable, nodes: set[tuple[str, int]], s: sp.csr_matrix, du: sp.csr_matrix,
             attrs: Mapping[Node, Mapping[str, Any]]) -> nx.DiGraph:
    g = nx.DiGraph()
    users = np.array(sorted(i for k, i in nodes if k == USER), dtype=np.int64)
    devs = np.array(sorted(i for k, i in nodes if k == DEVICE), dtype=np.int64)
    for kind, names, idx in ((USER, t.users, users), (DEVICE, t.devices, devs)):
        for i in idx:
            key = (kind, str(names[i]))
            g.add_node(key, kind=kind, label=str(names[i]), **dict(attrs.get(key, {})))
    sub = s[users][:, users].tocoo()
    for a, b, w in zip(sub.row, sub.col, sub.data, strict=True):
        g.add_edge((USER, str(t.users[users[a]])), (USER, str(t.users[users[b]])),
                   kind="share", weight=float(w))
    sub = du[devs][:, users].tocoo()
    for a, b, w in zip(sub.row, sub.col, sub.data, strict=True):
        g.add_edge((DEVICE, str(t.devices[devs[a]])), (USER, str(t.users[users[b]])),
                   kind="device", weight=float(w))
    return g
