"""A device's neighbourhood in the share graph, built from per-node adjacency in Redis.

Starting from the device, each hop reads the adjacency lists of the nodes
found by the previous hop (one ``HMGET`` per hop, never the whole graph):
a device links to its users, a user to whom they shared with (``out``), who
shared with them (``in``) and the devices they used. Heavier links are
taken first; at ``max_nodes`` expansion stops and ``truncated`` is set.
The device's live users (from its window state) join at hop 1 even when
the batch job has not seen them yet. Edges between nodes already in the
graph are added whatever their hop, so the result is the induced subgraph.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis

from riskservice.graph_store import current_version, node_fields
from riskservice.limits.keys import device_tag
from riskservice.limits.records import decode_device_state
from riskservice.review.graph_json import DEVICE, USER, Node, SubGraph, graph_to_json

MAX_HOPS = 3
MAX_NODES = 150
# (weight, neighbour, edge source, edge target, edge kind)
Link = tuple[float, Node, Node, Node, str]


def _links(node: Node, adjacency: dict[str, Any]) -> list[Link]:
    """A :data:`Link` for every entry of a node's adjacency lists."""
    kind = node[0]
    out: list[Link] = []
    if kind == DEVICE:
        out += [(float(w), (USER, u), node, (USER, u), "device") for u, w in adjacency.get("users", [])]
    else:
        out += [(float(w), (USER, u), node, (USER, u), "share") for u, w in adjacency.get("out", [])]
        out += [(float(w), (USER, u), (USER, u), node, "share") for u, w in adjacency.get("in", [])]
        out += [(float(w), (DEVICE, d), (DEVICE, d), node, "device") for d, w in adjacency.get("devices", [])]
    return out


def _adjacency(client: redis.Redis, version: int | None, nodes: list[Node]) -> list[dict[str, Any]]:
    if version is None or not nodes:
        return [{} for _ in nodes]
    raws = node_fields(client, version, "adj", [f"{k}:{n}" for k, n in nodes])
    return [orjson.loads(r) if r else {} for r in raws]


def neighbourhood(client: redis.Redis, device_id: str, hops: int = 1,
                  max_nodes: int = MAX_NODES) -> tuple[SubGraph, bool, int | None]:
    """The capped neighbourhood graph of a device; returns (graph, truncated, scores version).

    Nodes are ``(kind, id)`` with attributes ``kind``, ``label``, ``hop``,
    ``parent`` (the node it was reached from), ``kol``, ``anomaly`` (None
    when unscored) and ``live`` (a user in the device's window state).
    Edges are ``device -> user`` (``kind="device"``) and ``sharer ->
    recipient`` (``kind="share"``), with ``weight``.
    """
    version = current_version(client)
    centre: Node = (DEVICE, device_id)
    g = SubGraph()
    g.add_node(centre, kind=DEVICE, label=device_id, hop=0, parent=None, live=False)
    truncated = False
    _, live = decode_device_state(cast(bytes | None, client.get(f"{device_tag(device_id)}:state")))
    frontier = [centre]
    for hop in range(1, hops + 1):
        # (link, the node it was found from)
        candidates: list[tuple[Link, Node]] = []
        for node, adj in zip(frontier, _adjacency(client, version, frontier), strict=True):
            candidates += [(link, node) for link in _links(node, adj)]
        if hop == 1:
            candidates += [((0.0, (USER, u), centre, (USER, u), "device"), centre) for u in sorted(live)]
        candidates.sort(key=lambda c: -c[0][0])
        added: list[Node] = []
        for (weight, nb, a, b, kind), parent in candidates:
            if nb not in g:
                if len(g) >= max_nodes:
                    truncated = True
                    continue
                g.add_node(nb, kind=nb[0], label=nb[1], hop=hop, parent=parent, live=False)
                added.append(nb)
            if not g.has_edge(a, b):
                g.add_edge(a, b, kind=kind, weight=weight)
        frontier = added
        if not frontier:
            break
    # Links among the outermost nodes (their lists were not read while expanding).
    for node, adj in zip(frontier, _adjacency(client, version, frontier), strict=True):
        for weight, nb, a, b, kind in _links(node, adj):
            if nb in g and not g.has_edge(a, b):
                g.add_edge(a, b, kind=kind, weight=weight)
    for user in live:
        if (USER, user) in g:
            g.nodes[(USER, user)]["live"] = True
    _score(client, version, g)
    return g, truncated, version


def _score(client: redis.Redis, version: int | None, g: SubGraph) -> None:
    nodes = list(g.nodes)
    rows: list[bytes | None] = [None] * len(nodes)
    if version is not None:
        rows = node_fields(client, version, "rows", [f"{k}:{n}" for k, n in nodes])
    for node, raw in zip(nodes, rows, strict=True):
        row = orjson.loads(raw) if raw else {}
        g.nodes[node]["kol"] = row.get("kol")
        g.nodes[node]["anomaly"] = row.get("anomaly")


def to_json(g: SubGraph, device_id: str, hops: int, truncated: bool, version: int | None,
            max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The API form: ``{device_id, hops, version, truncated, max_nodes, nodes, edges}``."""
    body = graph_to_json(g)
    for node in body["nodes"]:
        parent = node.pop("parent")
        node["parent"] = None if parent is None else {"kind": parent[0], "id": parent[1]}
    return {"device_id": device_id, "hops": hops, "version": version, "truncated": truncated,
            "max_nodes": max_nodes, **body}
