"""Share graph as sparse matrices (for scoring) and as networkx (for people).

The heavy scoring never builds a Python object per edge: it works on
``scipy.sparse`` matrices made in one call from the event arrays.  Analysts
and the report look at small pieces, for which :func:`neighbourhood_graph`
builds a capped networkx ``DiGraph`` around a few nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.events import EventTable

USER, DEVICE = "user", "device"
Node = tuple[str, str]  # (kind, id as in the events)


def share_matrix(t: EventTable) -> sp.csr_matrix:
    """Sharer -> recipient matrix; entry = number of deliveries.

    Examples
    --------
    >>> from graphs.events import read_events
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0,
    ...                   "recipients": ["b", "b2"]}])
    >>> share_matrix(t).toarray().tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    n = t.n_users
    data = np.ones(t.n_edges, dtype=np.float64)
    m = sp.csr_matrix((data, (t.edge_src, t.edge_dst)), shape=(n, n))
    m.sum_duplicates()
    return m


def device_user_matrix(t: EventTable) -> sp.csr_matrix:
    """Device x user matrix; entry = number of attempts (any decision).

    Examples
    --------
    >>> from graphs.events import read_events
    >>> t = read_events([{"user_id": u, "device_id": "d", "coupon_id": "c", "ts": 0}
    ...                  for u in "abc"])
    >>> device_user_matrix(t).toarray().tolist()
    [[1.0, 1.0, 1.0]]
    """
    has = t.device >= 0
    data = np.ones(int(has.sum()), dtype=np.float64)
    m = sp.csr_matrix((data, (t.device[has], t.sharer[has])), shape=(t.n_devices, t.n_users))
    m.sum_duplicates()
    return m


def binary(m: sp.spmatrix) -> sp.csr_matrix:
    """Same pattern as ``m`` with every stored entry set to 1.

    Examples
    --------
    >>> binary(sp.csr_matrix([[0, 3], [2, 0]])).toarray().tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    b = sp.csr_matrix(m, dtype=np.float64, copy=True)
    b.data[:] = 1.0
    return b


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
    >>> from graphs.events import read_events
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


def graph_to_json(g: nx.DiGraph) -> dict[str, list[dict[str, Any]]]:
    """JSON-ready ``{"nodes": [...], "edges": [...]}`` of a neighbourhood graph.

    Examples
    --------
    >>> g = nx.DiGraph()
    >>> g.add_edge(("user", "a"), ("user", "b"), kind="share", weight=2.0)
    >>> graph_to_json(g)["edges"][0]["source"]
    'a'
    """
    nodes = [{"id": n[1], "kind": n[0], **{k: v for k, v in d.items() if k not in ("kind", "label")}}
             for n, d in g.nodes(data=True)]
    edges = [{"source": a[1], "source_kind": a[0], "target": b[1], "target_kind": b[0], **d}
             for a, b, d in g.edges(data=True)]
    return {"nodes": nodes, "edges": edges}
