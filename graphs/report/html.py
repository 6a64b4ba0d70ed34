"""The batch job's report: ``DIR/report.html`` with tables and the PNG plots."""

from __future__ import annotations

import html
import os
from collections import Counter
from typing import Any

from graphs.report.plots import plot_component, plot_distributions
from graphs.report.quality import roc_auc
from graphs.scorers.score import ScoreResult

__all__ = ["write_report"]

TOP = 20


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
    auc = roc_auc(lab[known] == 1, r.anomaly.user[known])
    return (f"<p>{int(known.sum())} users carry analyst labels ({int((lab == 1).sum())} fraud). "
            f"They are reported, never trained on. Anomaly ROC AUC against them: {auc:.3f}.</p>")


def write_report(r: ScoreResult, rows: list[dict[str, Any]], directory: str | os.PathLike[str]) -> str:
    """Write ``report.html`` and its PNGs into ``directory``; return the HTML path.

    Examples
    --------
    >>> import tempfile
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.scorers.rows import result_rows
    >>> from graphs.scorers.score import score_table
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
        f"{t.n_devices} devices. Anomalous (score &ge; 0.5): {int((r.anomaly.user >= 0.5).sum())} users, "
        f"{int((r.anomaly.device >= 0.5).sum())} devices.</p>",
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
