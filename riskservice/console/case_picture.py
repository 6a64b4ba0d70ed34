"""A case's subgraph as a picture: the most anomalous member in the centre, the rest on rings by hops.

The case page reuses the neighbourhood's drawing (:func:`riskservice.console.picture.draw`):
the stored subgraph is turned into a :class:`SubGraph` whose hops and
parents come from a breadth-first walk from the centre, so connected members
sit near each other. Members the walk does not reach (a cut subgraph) go on
the outer ring.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from riskservice.console.picture import Picture, draw
from riskservice.review.graph_json import Node, SubGraph

__all__ = ["case_picture"]


def _centre(nodes: list[dict[str, Any]]) -> Node:
    """The most anomalous device (what ties a farm), else the most anomalous user."""
    devices = [n for n in nodes if n["kind"] == "device"]
    best = max(devices or nodes, key=lambda n: (n.get("anomaly") or 0.0, n["id"]))
    return (best["kind"], best["id"])


def case_picture(subgraph: dict[str, Any]) -> tuple[Picture, SubGraph]:
    """The picture of a stored case subgraph (``{"nodes", "edges", "truncated"}``), and the graph drawn.

    >>> pic, g = case_picture({"nodes": [{"id": "d", "kind": "device", "anomaly": 1.0, "kol": 0.0},
    ...                                  {"id": "a", "kind": "user", "anomaly": 0.9, "kol": 0.1}],
    ...                        "edges": [{"source": "d", "source_kind": "device", "target": "a",
    ...                                   "target_kind": "user", "kind": "device", "weight": 2.0}]})
    >>> [(n["id"], n["hop"]) for n in pic.nodes], len(pic.edges)
    ([('a', 1), ('d', 0)], 1)
    """
    g = SubGraph()
    nodes = subgraph.get("nodes", [])
    if not nodes:
        return Picture(nodes=[], edges=[]), g
    links: dict[Node, list[Node]] = {}
    for e in subgraph.get("edges", []):
        a, b = (e["source_kind"], e["source"]), (e["target_kind"], e["target"])
        links.setdefault(a, []).append(b)
        links.setdefault(b, []).append(a)
    centre = _centre(nodes)
    hop: dict[Node, int] = {centre: 0}
    parent: dict[Node, Node | None] = {centre: None}
    todo = deque([centre])
    while todo:
        n = todo.popleft()
        for m in links.get(n, ()):
            if m not in hop:
                hop[m], parent[m] = hop[n] + 1, n
                todo.append(m)
    outer = max(hop.values()) + 1
    for n in nodes:
        key = (n["kind"], n["id"])
        g.add_node(key, kind=n["kind"], anomaly=n.get("anomaly"), kol=n.get("kol"), hop=hop.get(key, outer),
                   parent=parent.get(key), live=False)
    for e in subgraph.get("edges", []):
        a, b = (e["source_kind"], e["source"]), (e["target_kind"], e["target"])
        if a in g and b in g:
            g.add_edge(a, b, kind=e["kind"], weight=e.get("weight"))
    return draw(g, centre), g
