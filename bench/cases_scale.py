"""What building and storing cases adds to a batch run, on a simulated workload with planted fraud.

One run, side by side: the batch job (read the events file, score, write
``scores.jsonl``; then the write-back of rows and adjacency into a real Redis)
without cases, and the extra work cases bring: cutting them from the scores
(``graphs.cases.build_cases``) and storing them with a version
(``riskservice.cases.store.write_cases``, timed alone). The workload comes
from ``graphs.workload`` (organic cascades plus every planted fraud kind);
about 1.1 M users give about 1 M delivered edges.

Usage::

    .venv/bin/python bench/cases_scale.py --users 1100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.cases.build import build_cases  # noqa: E402
from graphs.events.jsonl import read_events  # noqa: E402
from graphs.features.adjacency import distinct_recipients, node_adjacency  # noqa: E402
from graphs.scorers.rows import result_rows, write_scores  # noqa: E402
from graphs.scorers.score import score_table  # noqa: E402
from graphs.workload.simulate import simulate  # noqa: E402
from riskservice.cases.store import write_cases  # noqa: E402
from riskservice.graph_store import begin_version, current_version, write_back  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def run(users: int, seed: int, work: Path) -> dict[str, Any]:
    t = time.perf_counter()
    events, _ = simulate(users, seed)
    path = work / "events.jsonl"
    with open(path, "wb") as fh:
        for e in events:
            fh.write(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE))
    del events
    simulate_s = time.perf_counter() - t

    t0 = time.perf_counter()
    table = read_events(path)
    res = score_table(table)
    rows = result_rows(res)
    write_scores(rows, work / "out")
    score_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    cases = build_cases(res)
    build_s = time.perf_counter() - t1

    redis_server = RedisServer(work / "redis").start()
    try:
        client = redis_server.client()
        adjacency = list(node_adjacency(table))
        reach = distinct_recipients(table)
        t2 = time.perf_counter()
        write_back(client, rows, adjacency, source="bench", reach=reach)
        writeback_s = time.perf_counter() - t2
        # Storing the cases, timed alone: what write_back(cases=...) adds between writing the rows
        # and making the version current (ids matched to the current version's cases).
        current = current_version(client)
        version = begin_version(client)
        t3 = time.perf_counter()
        write_cases(client, version, cases, current)
        store_s = time.perf_counter() - t3
        client.close()
    finally:
        redis_server.kill()
    batch_s = score_s + writeback_s
    return {
        "users": users, "seed": seed, "edges": table.n_edges, "events": table.n_events,
        "nodes": table.n_users + table.n_devices, "simulate_s": round(simulate_s, 2),
        "batch_s": round(batch_s, 2), "read_score_write_s": round(score_s, 2), "writeback_s": round(writeback_s, 2),
        "build_cases_s": round(build_s, 3), "store_cases_s": round(store_s, 3),
        "added_share": round((build_s + store_s) / batch_s, 4),
        "cases": len(cases), "members": sum(len(c["members"]) for c in cases),
        "largest": max((len(c["members"]) for c in cases), default=0),
        "kinds": dict(Counter(c["kind"] for c in cases)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, nargs="+", default=[1_100_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args()
    results = []
    for users in a.users:
        with tempfile.TemporaryDirectory() as d:
            r = run(users, a.seed, Path(d))
        results.append(r)
        print(json.dumps(r), flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
