"""Plots of a scoring run, drawn on ``matplotlib.figure.Figure`` with the Agg canvas.

Never through ``pyplot``, so the report neither needs a display nor touches
global matplotlib state of the process that calls it.
"""

from __future__ import annotations

import os

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from graphs.report.picture import neighbourhood_graph
from graphs.scorers.anomaly import top_component
from graphs.scorers.score import ScoreResult

__all__ = ["plot_component", "plot_distributions"]


def _save(fig: Figure, path: str) -> str:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return os.path.basename(path)


def plot_distributions(r: ScoreResult, path: str) -> str:
    """Histograms of KOL and anomaly scores for users and devices (log counts)."""
    fig = Figure(figsize=(10, 6))
    fig.subplots_adjust(hspace=0.45, wspace=0.25)
    series = [("user KOL", r.kol.user), ("user anomaly", r.anomaly.user),
              ("device KOL", r.device_kol), ("device anomaly", r.anomaly.device)]
    for k, (title, x) in enumerate(series, 1):
        ax = fig.add_subplot(2, 2, k)
        # bin with numpy and draw one step artist: a bar per bin is slow at 250 k nodes
        counts, edges = np.histogram(x, bins=50, range=(0.0, 1.0))
        ax.stairs(counts, edges, fill=True, color="#c0392b" if "anomaly" in title else "#2471a3")
        if counts.max(initial=0) > 0:  # a log axis over an empty histogram only warns
            ax.set_yscale("log")
        ax.set_title(f"{title} (n={x.size})", y=1.0)  # a fixed y skips a costly layout pass
        ax.set_xlabel("score")
    return _save(fig, path)


def plot_component(r: ScoreResult, path: str, max_nodes: int = 150) -> tuple[str | None, int]:
    """Draw the largest connected group of suspicious users with their devices."""
    t = r.table
    whole = top_component(t, r.features, r.anomaly.user)
    if whole.size == 0:
        return None, 0
    # a huge group is cut to a connected piece around its worst member
    members = top_component(t, r.features, r.anomaly.user, max_users=max_nodes)
    seeds = [("user", str(t.users[i])) for i in members]
    scores = {("user", str(u)): {"anomaly": a} for u, a in zip(t.users, r.anomaly.user.tolist(), strict=True)}
    scores.update({("device", str(d)): {"anomaly": a}
                   for d, a in zip(t.devices, r.anomaly.device.tolist(), strict=True)})
    mats = {"share": r.features.share, "device_user": r.features.device_user}
    g = neighbourhood_graph(t, seeds, hops=0, max_nodes=max_nodes, node_attrs=scores, **mats)
    dev = neighbourhood_graph(t, seeds, hops=1, max_nodes=max_nodes + 60, node_attrs=scores, **mats)
    g.add_nodes_from((n, d) for n, d in dev.nodes(data=True) if n[0] == "device")
    g.add_edges_from((a, b, d) for a, b, d in dev.edges(data=True) if a in g and b in g)
    pos = nx.spring_layout(g, seed=0, k=1.5 / max(np.sqrt(g.number_of_nodes()), 1))
    fig = Figure(figsize=(9, 9))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.92))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.3, arrows=False, width=0.6)
    for kind, shape in (("user", "o"), ("device", "s")):
        nodes = [n for n in g if n[0] == kind]
        if nodes:
            nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_shape=shape, node_size=60,
                                   node_color=[g.nodes[n].get("anomaly", 0.0) for n in nodes],
                                   cmap="Reds", vmin=0, vmax=1, edgecolors="#333333", linewidths=0.4)
    shown = "" if members.size == whole.size else f" ({members.size} nearest its worst member shown)"
    ax.set_title(f"most suspicious group: {whole.size} users{shown}; circles users, squares devices, "
                 "colour = anomaly", fontsize=9)
    ax.set_axis_off()
    return _save(fig, path), int(whole.size)
