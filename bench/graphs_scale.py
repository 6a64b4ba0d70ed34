"""Scale benchmark: end-to-end batch scoring on heavy-tailed share graphs.

For each size (share edges) the script generates a JSONL workload whose
sharer and recipient degrees are heavy-tailed (power law, plus two hubs that
each share to about a tenth of all edges, i.e. 100 k edges at 1 M), then, in
a fresh subprocess per size so peak memory is per run:

* times reading the file, scoring (features, cascades, anomaly, KOL),
  writing ``scores.jsonl`` and the report;
* times igraph building the same directed graph from the edge arrays and
  computing PageRank and coreness (the reference for the physical limit);
* reports the ratios to igraph of the scoring alone, of everything after
  parsing (score, rows, file, report) and of everything (parsing included).

Usage::

    .venv/bin/python bench/graphs_scale.py --edges 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def heavy_tailed_events(n_edges: int, seed: int = 0) -> list[dict[str, Any]]:
    """Share events with ~``n_edges`` delivered edges and power-law degrees."""
    rng = np.random.default_rng(seed)
    n_users = max(1000, n_edges // 3)
    k = rng.integers(1, 11, n_edges // 5 + 10)  # recipients per share, at most 10
    k = k[: np.searchsorted(np.cumsum(k), n_edges) + 1]
    m = k.size
    w = (1.0 - rng.random(n_users)) ** (-1.0 / 1.1)  # Pareto tail, alpha ~ 2.1 on degree
    w /= w.sum()
    sharer = rng.choice(n_users, m, p=w)
    hubs = rng.choice(n_users, 2, replace=False)
    hub_ev = rng.random(m) < 0.2  # two hubs share ~10 % of all edges each
    sharer[hub_ev] = rng.choice(hubs, int(hub_ev.sum()))
    rec = rng.choice(n_users, int(k.sum()), p=w)
    # the hubs reach far: ~100 k recipients each at 1 M edges
    on_hub = np.repeat(hub_ev, k)
    rec[on_hub] = rng.integers(0, n_users, int(on_hub.sum()))
    n_coupons = max(10, m // 50)
    coupon = rng.integers(0, n_coupons, m)
    issued = 1.75e9 + rng.random(n_coupons) * 26 * 86400
    ts = issued[coupon] + rng.exponential(6 * 3600, m)
    device = np.where(rng.random(m) < 0.02, rng.integers(0, 50, m), sharer + 100)
    claimed = rng.binomial(k, 0.2)
    offs = np.concatenate(([0], np.cumsum(k)))
    names = [f"u{i}" for i in range(n_users)]
    decision = np.where(rng.random(m) < 0.02, "challenge", "allow")
    out = []
    for i in range(m):
        out.append({"event_id": f"e{i}", "device_id": f"d{device[i]}", "user_id": names[sharer[i]],
                    "coupon_id": f"c{coupon[i]}", "merchant_id": None, "channel": "group",
                    "recipients": [names[j] for j in rec[offs[i]:offs[i + 1]].tolist()],
                    "ip": None, "geo": None, "text": "", "ts": float(ts[i]),
                    "decision": str(decision[i]), "decision_id": f"x{i}",
                    "delivered": int(k[i]), "opened": int(k[i]), "claimed": int(claimed[i])})
    return out


def run_size(n_edges: int, workdir: str) -> dict[str, Any]:
    """Generate, score and compare with igraph; runs inside its own process."""
    import igraph as ig

    from graphs.events.jsonl import read_events
    from graphs.report.html import write_report
    from graphs.scorers.rows import result_rows, write_scores
    from graphs.scorers.score import score_table

    path = os.path.join(workdir, "events.jsonl")
    with open(path, "wb") as fh:
        for ev in heavy_tailed_events(n_edges):
            fh.write(orjson.dumps(ev, option=orjson.OPT_APPEND_NEWLINE))
    out: dict[str, Any] = {"target_edges": n_edges}
    t0 = time.perf_counter()
    table = read_events(path)
    out["read_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = score_table(table)
    out["score_s"] = time.perf_counter() - t0
    out["stages_s"] = {k: round(v, 3) for k, v in res.timings.items()}
    t0 = time.perf_counter()
    rows = result_rows(res)
    write_scores(rows, workdir)
    out["rows_write_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_report(res, rows, workdir)
    out["report_s"] = time.perf_counter() - t0
    out["rss_after_ours_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(edges=table.n_edges, users=table.n_users, devices=table.n_devices, events=table.n_events,
               max_out_degree=int(res.features.out_contacts.max()),
               max_in_degree=int(res.features.in_contacts.max()))
    t0 = time.perf_counter()
    g = ig.Graph(n=table.n_users, edges=np.column_stack([table.edge_src, table.edge_dst]), directed=True)
    out["igraph_build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    g.pagerank()
    out["igraph_pagerank_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    g.coreness(mode="all")
    out["igraph_coreness_s"] = time.perf_counter() - t0
    out["igraph_total_s"] = out["igraph_build_s"] + out["igraph_pagerank_s"] + out["igraph_coreness_s"]
    out["ours_end_to_end_s"] = out["read_s"] + out["score_s"] + out["rows_write_s"] + out["report_s"]
    out["ratio_score_vs_igraph"] = out["score_s"] / out["igraph_total_s"]
    out["ratio_end_to_end_vs_igraph"] = out["ours_end_to_end_s"] / out["igraph_total_s"]
    # parsing JSON lines is reported on its own: igraph's side starts from arrays
    out["ratio_after_parsing_vs_igraph"] = (out["ours_end_to_end_s"] - out["read_s"]) / out["igraph_total_s"]
    out["cpu_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode
    a = ap.parse_args(argv)
    if a.one:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(run_size(a.one, d)))
        return 0
    results = []
    for n in a.edges:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True,
                              text=True, check=True, env={**os.environ, "TQDM_DISABLE": "1"})
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"edges={r['edges']:>8} read={r['read_s']:.2f}s score={r['score_s']:.2f}s "
              f"rows+write={r['rows_write_s']:.2f}s report={r['report_s']:.2f}s "
              f"igraph={r['igraph_total_s']:.2f}s score/igraph={r['ratio_score_vs_igraph']:.1f}x "
              f"e2e/igraph={r['ratio_end_to_end_vs_igraph']:.1f}x "
              f"(e2e-read)/igraph={r['ratio_after_parsing_vs_igraph']:.1f}x peak={r['peak_rss_mib']:.0f}MiB "
              f"maxdeg out/in={r['max_out_degree']}/{r['max_in_degree']} stages={r['stages_s']}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
