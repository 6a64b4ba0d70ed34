"""The batch job's report: ``DIR/report.html`` with tables and PNG plots.

Plots are drawn on ``matplotlib.figure.Figure`` with the Agg canvas, never
through ``pyplot``, so the report neither needs a display nor touches global
matplotlib state of the process that calls it.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from graphs.anomaly import top_component
from graphs.build import neighbourhood_graph
from graphs.evaluate import roc_auc

if TYPE_CHECKING:
    from graphs.pipeline import ScoreResult

TOP = 20


def _save(fig: Figure, path: str) -> str:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return os.path.basename(path)


def plot_distributions(r: ScoreResult, path: str) -> str:
    """Histograms of KOL and anomaly scores for users and devices (log counts)."""
    fig = Figure(figsize=(10, 6))
    fig.subplots_adjust(hspace=0.45, wspace=0.25)
    series = [("user KOL", r.kol["user"]), ("user anomaly", r.anomaly["user"]),
              ("device KOL", r.device_kol), ("device anomaly", r.anomaly["device"])]
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
    whole = top_component(t, r.features, r.anomaly["user"])
    if whole.size == 0:
        return None, 0
    # a huge group is cut to a connected piece around its worst member
    members = top_component(t, r.features, r.anomaly["user"], max_users=max_nodes)
    seeds = [("user", str(t.users[i])) for i in members]
    scores = {("user", str(u)): {"anomaly": a} for u, a in zip(t.users, r.anomaly["user"].tolist(), strict=True)}
    scores.update({("device", str(d)): {"anomaly": a}
                   for d, a in zip(t.devices, r.anomaly["device"].tolist(), strict=True)})
    mats = {"share": r.features["S"], "device_user": r.features["DU"]}
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


def _table(rows: list[dict[str, Any]], key: str, kind: str, family: str) -> str:
    top = sorted((x for x in rows if x["kind"] == kind), key=lambda x: -x[key])[:TOP]
    out = [f"<table><tr><th>{kind}</th><th>KOL</th><th>anomaly</th><th>signals</th></tr>"]
    for x in top:
        sig = "<br>".join(f"<b>{html.escape(s['name'])}</b> ({s['score']:.2f}): {html.escape(s['detail'])}"
                          for s in x["signals"] if s["family"] in (family, "label"))
        out.append(f"<tr><td>{html.escape(str(x['node']))}</td><td>{x['kol']:.3f}</td>"
                   f"<td>{x['anomaly']:.3f}</td><td>{sig}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _label_section(r: ScoreResult) -> str:
    lab = r.table.user_label
    known = lab >= 0
    if not known.any():
        return "<p>No analyst labels in these events.</p>"
    auc = roc_auc(lab[known] == 1, r.anomaly["user"][known])
    return (f"<p>{int(known.sum())} users carry analyst labels ({int((lab == 1).sum())} fraud). "
            f"They are reported, never trained on. Anomaly ROC AUC against them: {auc:.3f}.</p>")


def write_report(r: ScoreResult, rows: list[dict[str, Any]], directory: str | os.PathLike[str]) -> str:
    """Write ``report.html`` and its PNGs into ``directory``; return the HTML path.

    Examples
    --------
    >>> import tempfile
    >>> from graphs.events import read_events
    >>> from graphs.pipeline import result_rows, score_table
    >>> res = score_table(read_events([{"user_id": "a", "coupon_id": "c", "ts": 0,
    ...                                 "recipients": ["b"]}]))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.path.basename(write_report(res, result_rows(res), d))
    'report.html'
    """
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    t = r.table
    dist = plot_distributions(r, os.path.join(d, "score_distributions.png"))
    comp, comp_n = plot_component(r, os.path.join(d, "suspicious_component.png"))
    fired = Counter(s["name"] for x in rows for s in x["signals"] if s["family"] == "anomaly" and s["score"] >= 0.5)
    sig_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in fired.most_common())
    timing = "".join(f"<tr><td>{k}</td><td>{v:.2f}</td></tr>" for k, v in r.timings.items())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Share graph scoring report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}</style></head><body>",
        "<h1>Share graph scoring report</h1>",
        f"<p>{t.n_events} share events, {t.n_edges} delivered edges, {t.n_users} users, "
        f"{t.n_devices} devices. Anomalous (score &ge; 0.5): {int((r.anomaly['user'] >= 0.5).sum())} users, "
        f"{int((r.anomaly['device'] >= 0.5).sum())} devices.</p>",
        "<h2>Score distributions</h2>", f"<img src='{dist}' alt='score distributions'>",
        "<h2>Most suspicious group</h2>",
        f"<img src='{comp}' alt='suspicious component'><p>{comp_n} users.</p>" if comp
        else "<p>No user scores 0.5 or more.</p>",
        "<h2>Signals that fired (score &ge; 0.5)</h2><table><tr><th>signal</th><th>nodes</th></tr>"
        f"{sig_rows}</table>",
        "<h2>Top anomalous users</h2>", _table(rows, "anomaly", "user", "anomaly"),
        "<h2>Top anomalous devices</h2>", _table(rows, "anomaly", "device", "anomaly"),
        "<h2>Top KOL users</h2>", _table(rows, "kol", "user", "kol"),
        "<h2>Analyst labels</h2>", _label_section(r),
        f"<h2>Stage timings (s)</h2><table>{timing}</table>", "</body></html>",
    ]
    path = os.path.join(d, "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    os.replace(tmp, path)
    return path
