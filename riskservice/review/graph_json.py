"""Node kinds and the JSON form of a neighbourhood graph, on the service side.

The batch library (``graphs``) writes the adjacency lists this view reads;
the service only needs the two node kinds and the JSON shape, so it keeps
them here and never imports the batch library (or numpy and scipy with it).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

__all__ = ["DEVICE", "USER", "Node", "graph_to_json"]

#: node kinds, as the batch job writes them into rows and adjacency lists
USER, DEVICE = "user", "device"
Node = tuple[str, str]  # (kind, id)


def graph_to_json(g: nx.DiGraph) -> dict[str, list[dict[str, Any]]]:
    """JSON-ready ``{"nodes": [...], "edges": [...]}`` of a neighbourhood graph.

    Nodes are ``(kind, id)`` tuples; a node becomes ``{"id", "kind", ...}``
    with its attributes other than ``kind`` and ``label``, an edge
    ``{"source", "source_kind", "target", "target_kind", ...}`` with its
    attributes.

    Examples
    --------
    >>> g = nx.DiGraph()
    >>> g.add_node(("device", "d"), kind="device", label="d", hop=0)
    >>> g.add_edge(("device", "d"), ("user", "a"), kind="device", weight=2.0)
    >>> body = graph_to_json(g)
    >>> body["nodes"][0], body["edges"][0]["target"]
    ({'id': 'd', 'kind': 'device', 'hop': 0}, 'a')
    """
    nodes = [{"id": n[1], "kind": n[0], **{k: v for k, v in d.items() if k not in ("kind", "label")}}
             for n, d in g.nodes(data=True)]
    edges = [{"source": a[1], "source_kind": a[0], "target": b[1], "target_kind": b[0], **d}
             for a, b, d in g.edges(data=True)]
    return {"nodes": nodes, "edges": edges}
