"""Node kinds, a small graph, and the JSON form of a neighbourhood, on the service side.

The batch library (``graphs``) writes the adjacency lists this view reads;
the service needs only the two node kinds, a graph of at most a few hundred
nodes and its JSON shape, so it keeps them here and loads neither the batch
library nor networkx, numpy or scipy in a serving worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEVICE", "USER", "Node", "SubGraph", "graph_to_json"]

#: node kinds, as the batch job writes them into rows and adjacency lists
USER, DEVICE = "user", "device"
Node = tuple[str, str]  # (kind, id)


@dataclass
class SubGraph:
    """A small directed graph: node -> attributes and (source, target) ->
    attributes, both in the order they were added.

    >>> g = SubGraph()
    >>> g.add_node(("device", "d"), hop=0)
    >>> g.add_edge(("device", "d"), ("user", "a"), weight=2.0)
    >>> ("user", "a") in g, len(g), g.has_edge(("device", "d"), ("user", "a"))
    (True, 2, True)
    """

    nodes: dict[Node, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[Node, Node], dict[str, Any]] = field(default_factory=dict)

    def add_node(self, node: Node, **attrs: Any) -> None:
        self.nodes.setdefault(node, {}).update(attrs)

    def add_edge(self, source: Node, target: Node, **attrs: Any) -> None:
        """An edge, and its ends as nodes if they are new."""
        self.nodes.setdefault(source, {})
        self.nodes.setdefault(target, {})
        self.edges.setdefault((source, target), {}).update(attrs)

    def has_edge(self, source: Node, target: Node) -> bool:
        return (source, target) in self.edges

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)


def graph_to_json(g: SubGraph) -> dict[str, list[dict[str, Any]]]:
    """JSON-ready ``{"nodes": [...], "edges": [...]}`` of a neighbourhood graph.

    Nodes are ``(kind, id)`` tuples; a node becomes ``{"id", "kind", ...}``
    with its attributes other than ``kind`` and ``label``, an edge
    ``{"source", "source_kind", "target", "target_kind", ...}`` with its
    attributes.

    Examples
    --------
    >>> g = SubGraph()
    >>> g.add_node(("device", "d"), kind="device", label="d", hop=0)
    >>> g.add_edge(("device", "d"), ("user", "a"), kind="device", weight=2.0)
    >>> body = graph_to_json(g)
    >>> body["nodes"][0], body["edges"][0]["target"]
    ({'id': 'd', 'kind': 'device', 'hop': 0}, 'a')
    """
    nodes = [{"id": n[1], "kind": n[0], **{k: v for k, v in d.items() if k not in ("kind", "label")}}
             for n, d in g.nodes.items()]
    edges = [{"source": a[1], "source_kind": a[0], "target": b[1], "target_kind": b[0], **d}
             for (a, b), d in g.edges.items()]
    return {"nodes": nodes, "edges": edges}
