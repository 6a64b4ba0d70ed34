"""Spark against numpy: end-to-end batch scoring of the same heavy-tailed events.

For each size (share edges) the script writes the workload of
``bench/graphs_scale.py`` once, then scores it in a fresh child process per
engine and setting: the numpy engine, and Spark with ``local[1]`` and
``local[2]`` (or the ``--cores`` given).  While a child runs, the parent
samples the memory of its process tree every 0.2 s, split into the driver
(the Python process), the JVM (in local mode the driver JVM holds the
executors too) and the Python workers the executors start.

Usage::

    .venv/bin/python bench/graphs_spark.py --edges 100000 1000000 --cores 1 2 --json /tmp/spark.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.graphs_scale import heavy_tailed_events  # noqa: E402


def _tree_rss(proc: psutil.Process) -> dict[str, float]:
    """RSS (MiB) of the driver, the JVMs and the Python workers under ``proc``."""
    out = {"driver": 0.0, "jvm": 0.0, "workers": 0.0}
    try:
        out["driver"] = proc.memory_info().rss / 2**20
        for child in proc.children(recursive=True):
            try:
                name = " ".join(child.cmdline()[:2])
                rss = child.memory_info().rss / 2**20
            except psutil.Error:
                continue
            out["jvm" if "java" in name else "workers"] += rss
    except psutil.Error:
        pass
    return out


def run_child(args: list[str]) -> dict[str, Any]:
    """Run one scoring child; return its JSON result plus peak memory by role."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=env, text=True) as child:
        ps = psutil.Process(child.pid)
        peak = {"driver": 0.0, "jvm": 0.0, "workers": 0.0}
        while child.poll() is None:
            for k, v in _tree_rss(ps).items():
                peak[k] = max(peak[k], v)
            time.sleep(0.2)  # ok-sleep: sampling a child's memory while it runs
        out = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise RuntimeError(f"child {args} failed")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    result.update({f"peak_{k}_mib": round(v) for k, v in peak.items()})
    return result


def child_numpy(path: str, out: str) -> dict[str, Any]:
    from graphs.run import run_score

    t0 = time.perf_counter()
    s = run_score(path, out, progress=False, report=False)
    return {"engine": "numpy", "seconds": round(time.perf_counter() - t0, 2), "users": s["users"],
            "edges": s["edges"]}


def child_spark(path: str, out: str, master: str) -> dict[str, Any]:
    from graphs.spark.run import spark_score

    t0 = time.perf_counter()
    s, _ = spark_score(path, out, master=master, shuffle_partitions=8)
    return {"engine": f"spark {master}", "seconds": round(time.perf_counter() - t0, 2), "users": s["users"],
            "edges": s["edges"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # engine, events path, output dir
    a = ap.parse_args(argv)
    if a.child:
        engine, path, out = a.child
        res = child_numpy(path, out) if engine == "numpy" else child_spark(path, out, engine)
        print(json.dumps(res))
        return 0
    results = []
    for n in a.edges:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "events.jsonl")
            with open(path, "wb") as fh:
                for ev in heavy_tailed_events(n):
                    fh.write(orjson.dumps(ev, option=orjson.OPT_APPEND_NEWLINE))
            engines = ([] if a.skip_numpy else ["numpy"]) + [f"local[{c}]" for c in a.cores]
            for engine in engines:
                r = run_child(["--child", engine, path, os.path.join(d, engine.replace("[", "").replace("]", ""))])
                r["target_edges"] = n
                results.append(r)
                print(f"edges={r['edges']:>9} {r['engine']:<16} {r['seconds']:>8.1f} s  driver "
                      f"{r['peak_driver_mib']:>5} MiB  jvm {r['peak_jvm_mib']:>5} MiB  "
                      f"python workers {r['peak_workers_mib']:>5} MiB", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
