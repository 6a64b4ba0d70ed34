"""The neighbourhood as a picture: positions on rings, ready for an SVG template.

Rings by hop (a shell layout): the device in the centre, its users on the
first ring, their contacts on the next. Each ring is ordered by where
its nodes' parents sit, so a user's contacts are drawn near that user.
Colour shows the anomaly score (green, amber, red; grey when unscored) and
size the KOL score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from riskservice.review.graph_json import Node, SubGraph

SIZE = 560  # the SVG's view box is SIZE x SIZE
MARGIN = 40
UNSCORED = "#aab4be"
# Anomaly 0 -> 0.5 -> 1: green, amber, red.
STOPS = ((0.0, (46, 158, 107)), (0.5, (230, 170, 40)), (1.0, (212, 55, 55)))


def colour(anomaly: float | None) -> str:
    """The fill for an anomaly score.

    >>> colour(None), colour(0.0), colour(1.0)
    ('#aab4be', '#2e9e6b', '#d43737')
    """
    if anomaly is None:
        return UNSCORED
    a = min(max(float(anomaly), 0.0), 1.0)
    for (x0, c0), (x1, c1) in pairwise(STOPS):
        if a <= x1:
            t = (a - x0) / (x1 - x0)
            return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(c0, c1, strict=True))
    return "#" + "".join(f"{p:02x}" for p in STOPS[-1][1])


def radius(kol: float | None, centre: bool = False) -> float:
    """A node's radius: 6 to 20 by KOL score; the device in the centre a little larger."""
    base = 6 + 14 * min(max(float(kol or 0), 0.0), 1.0)
    return max(base, 14) if centre else base


@dataclass(frozen=True)
class Picture:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    size: int = SIZE


def rings(g: SubGraph, centre: Node) -> list[list[Node]]:
    """Nodes by hop, each ring ordered by its parents' places in the ring before."""
    out = [[centre]]
    place = {centre: 0}
    depth = max((d.get("hop", 0) for d in g.nodes.values()), default=0)
    for hop in range(1, depth + 1):
        ring = [n for n, d in g.nodes.items() if d.get("hop") == hop]
        ring.sort(key=lambda n: (place.get(g.nodes[n].get("parent") or centre, 0), n))
        place = {n: i for i, n in enumerate(ring)}
        if ring:
            out.append(ring)
    return out


def shells(nlist: list[list[Node]]) -> dict[Node, tuple[float, float]]:
    """Concentric rings: the first (one node) in the centre, each next ring a
    step further out, its nodes evenly spaced and each ring turned a little
    against the one before so that parents and children do not line up.

    >>> shells([[("device", "d")], [("user", "a"), ("user", "b")]])[("device", "d")]
    (0.0, 0.0)
    """
    bump = 1.0 / len(nlist)
    r = 0.0 if len(nlist[0]) == 1 else bump
    turn = math.pi / len(nlist)
    first = turn
    pos = {}
    for ring in nlist:
        for i, node in enumerate(ring):
            theta = first + 2 * math.pi * i / len(ring)
            pos[node] = (r * math.cos(theta), r * math.sin(theta))
        r += bump
        first += turn
    return pos


def draw(g: SubGraph, centre: Node) -> Picture:
    """Positions, colours and sizes of every node and edge, in SVG coordinates."""
    pos = shells(rings(g, centre)) if len(g) > 1 else {centre: (0.0, 0.0)}
    # The rings stop short of the scale: stretch the outer one to the edge of the box.
    reach = max((float((x * x + y * y) ** 0.5) for x, y in pos.values()), default=0.0) or 1.0
    half = (SIZE - 2 * MARGIN) / 2 / reach

    def xy(n: Node) -> tuple[float, float]:
        x, y = pos[n]
        return round(SIZE / 2 + float(x) * half, 1), round(SIZE / 2 + float(y) * half, 1)

    nodes: list[dict[str, Any]] = []
    for n, d in g.nodes.items():
        x, y = xy(n)
        nodes.append({"id": n[1], "kind": n[0], "x": x, "y": y, "r": round(radius(d.get("kol"), n == centre), 1),
                      "fill": colour(d.get("anomaly")), "centre": n == centre, "live": bool(d.get("live")),
                      "kol": d.get("kol"), "anomaly": d.get("anomaly"), "hop": d.get("hop")})
    # The centre last so it is drawn on top.
    nodes.sort(key=lambda p: p["centre"])
    edges = []
    for (a, b), d in g.edges.items():
        (x1, y1), (x2, y2) = xy(a), xy(b)
        edges.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "kind": d.get("kind"), "weight": d.get("weight"),
                      "source": a[1], "target": b[1]})
    return Picture(nodes=nodes, edges=edges)
