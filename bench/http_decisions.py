"""Decisions per second through gunicorn, against a bare Flask endpoint.

Both run under the same gunicorn settings (2 sync workers) and the same wrk
load, alternating baseline / service rounds in one run so machine noise hits
both alike. Also counts Redis commands per decision from ``INFO``.

    .venv/bin/python bench/http_decisions.py [--seconds 10] [--rounds 3] [--cluster]

With ``--cluster`` the service runs on a local Redis Cluster of 3 masters
(``RISK_REDIS_CLUSTER=1``; tests/cluster_server.py starts it) and the command
counts are summed over the masters.

Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuning import add_argument as add_tuning_argument  # noqa: E402  (bench/ is this script's folder)
from tuning import tune  # noqa: E402

from tests.conftest import ISSUER_KEY  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving.gunicorn_server import Gunicorn  # noqa: E402

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


RUNS = itertools.count(1)


def wrk(url: str, seconds: int, connections: int, threads: int, script: str = "decisions.lua",
        devices: int = 50_000) -> dict[str, float]:
    """Run wrk and return requests/s and latency percentiles in ms. Each run sends
    event ids of its own (``BENCH_RUN``): no round replays another's events."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "bench" / script), url],
        check=True, capture_output=True, text=True,
        env={**os.environ, "BENCH_KEY": ISSUER_KEY, "BENCH_LUA_DIR": str(ROOT / "bench"),
             "BENCH_DEVICES": str(devices), "BENCH_RUN": str(next(RUNS))},
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        result[f"p{pct}_ms"] = float(m.group(1)) * UNITS[m.group(2)]  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return result


def redis_commands(server: Any) -> tuple[int, int, float, float, dict[str, float]]:
    """(all commands, EVALSHA and RISK.DECIDE calls, CPU seconds: user + sys, of which sys, and
    the µs Redis counted inside each command, by command) of Redis so far (summed over a
    cluster's masters)."""
    clients = ([n.client() for n in server.nodes if n.role == "master"] if hasattr(server, "nodes")
               else [server.client()])
    total = evalsha = 0
    cpu = sys_cpu = 0.0
    inside: dict[str, float] = {}
    for client in clients:
        total += int(client.info("stats")["total_commands_processed"])
        stats = client.info("commandstats")
        for name, stat in stats.items():
            command = name.removeprefix("cmdstat_")
            inside[command] = inside.get(command, 0.0) + float(stat.get("usec", 0))
        evalsha += sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                       for name in ("evalsha", "risk.decide", "risk.reserve", "risk.settle"))
        usage = client.info("cpu")
        cpu += float(usage["used_cpu_user"]) + float(usage["used_cpu_sys"])
        sys_cpu += float(usage["used_cpu_sys"])
        client.close()
    return total, evalsha, cpu, sys_cpu, inside


def answers_so_far(url: str) -> dict[str, float]:
    """Decisions the service answered so far, by answer, and how many of them
    degraded (``"degraded"``): its /metrics, every worker's."""
    counts: dict[str, float] = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        hit = re.match(r'risk_decisions_total\{(.*)\} ([\d.e+]+)', line)
        if hit:
            labels = dict(re.findall(r'(\w+)="(\w+)"', hit.group(1)))
            for key in (labels["decision"], "degraded") if labels.get("degraded") == "true" else (labels["decision"],):
                counts[key] = counts.get(key, 0.0) + float(hit.group(2))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--worker-class", choices=["gevent", "gthread", "sync"], default="gevent")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--redis", choices=["unix", "tcp"], default="unix",
                        help="how the service reaches Redis (the embedded default is a unix socket)")
    parser.add_argument("--cluster", action="store_true", help="the service on a local 3-master Redis Cluster")
    parser.add_argument("--budget-ms", type=int, default=50, help="RISK_REDIS_BUDGET_MS of the service")
    parser.add_argument("--linger-us", type=int, default=0, help="RISK_REDIS_LINGER_US of the service")
    parser.add_argument("--devices", type=int, default=50_000,
                        help="devices the load draws from: a few hundred are busy (full windows) within seconds")
    parser.add_argument("--signals", action=argparse.BooleanOptionalAction, default=True,
                        help="gunicorn's master runs the real-time signal consumer (RISK_SIGNALS, on by "
                             "default, as served): its reads and writes are Redis CPU too")
    parser.add_argument("--native", action="store_true",
                        help="the native module loaded (make native; with --cluster on every master): "
                             "decisions go to RISK.DECIDE (and RISK.RESERVE, RISK.SETTLE on a cluster)")
    add_tuning_argument(parser)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    redis_server: Any
    modules = []
    if args.native:
        from riskservice.limits.native import built_module

        module = built_module()
        if module is None:
            sys.exit("no native decide built: make native")
        modules.append(module)
    if args.cluster:
        from tests.cluster_server import RedisClusterServer

        redis_server = RedisClusterServer(work / "cluster").start()
        redis_server.kill = redis_server.stop
        for node in redis_server.nodes if modules else ():
            with node.client(5) as client:
                client.execute_command("MODULE", "LOAD", str(modules[0]))
    else:
        redis_server = RedisServer(work / "redis", modules=modules).start()
    if args.cluster:
        masters = [node.client(5) for node in redis_server.nodes]
    else:
        masters = [redis_server.client()]
    args.redis_settings = tune(masters, args.redis_defaults)
    for client in masters:
        client.close()
    # The default budget, and no access log (the baseline writes none either).
    quiet = {"RISK_LOG_LEVEL": "WARNING", "RISK_REDIS_BUDGET_MS": str(args.budget_ms),
             "RISK_WORKER_CLASS": args.worker_class, "RISK_THREADS": str(args.threads),
             "RISK_REDIS_LINGER_US": str(args.linger_us), "RISK_SIGNALS": "1" if args.signals else "0"}
    if args.cluster:
        quiet["RISK_REDIS_CLUSTER"] = "1"
    redis_url = redis_server.socket_url if args.redis == "unix" and not args.cluster else redis_server.url
    service = Gunicorn(work / "svc", workers=2, redis_url=redis_url, extra_env=quiet)
    baseline = Gunicorn(work / "base", workers=2, app="bench.baseline_app:app", ready_path="/v1/decisions",
                        redis_url=redis_server.url, extra_env=quiet)  # same gunicorn settings
    rounds: dict[str, list[dict[str, float]]] = {"baseline": [], "service": []}
    try:
        service.start()
        baseline.start()
        # Warm up both (imports, connection pools, script cache).
        wrk(service.url, 2, args.connections, 2, devices=args.devices)
        wrk(baseline.url, 2, args.connections, 2)
        commands = evalshas = decisions = 0
        cpu_us: list[float] = []
        sys_us: list[float] = []
        allowed: list[float] = []
        inside: dict[str, float] = {}
        for _ in range(args.rounds):
            rounds["baseline"].append(wrk(baseline.url, args.seconds, args.connections, 2))
            answered = answers_so_far(service.url)
            before = redis_commands(redis_server)
            result = wrk(service.url, args.seconds, args.connections, 2, devices=args.devices)
            after = redis_commands(redis_server)
            now = answers_so_far(service.url)
            allowed.append(now.get("allow", 0.0) - answered.get("allow", 0.0))
            rounds["service"].append(result)
            for command, usec in after[4].items():
                inside[command] = inside.get(command, 0.0) + usec - before[4].get(command, 0.0)
            commands += after[0] - before[0]
            evalshas += after[1] - before[1]
            decisions += int(result["requests"])
            # Redis CPU per decision served (the signal consumer's reads, a few per second, included).
            cpu_us.append(1e6 * (after[2] - before[2]) / result["requests"])
            sys_us.append(1e6 * (after[3] - before[3]) / result["requests"])
        answers = answers_so_far(service.url)
        degraded = answers.pop("degraded", 0.0)
    finally:
        service.stop()
        baseline.stop()
        redis_server.kill()
        shutil.rmtree(work, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[name])

    ratios = [s["rps"] / b["rps"] for s, b in zip(rounds["service"], rounds["baseline"], strict=True)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
          + (", Redis Cluster of 3 masters" if args.cluster else "") + f", {args.redis_settings}")
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, gunicorn 2 {args.worker_class} workers "
          f"(threads {args.threads}), "
          f"Redis over {args.redis}, {args.rounds} rounds, budget {args.budget_ms} ms, linger {args.linger_us} µs\n")
    print("| endpoint | requests/s (median) | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    for name in ("baseline", "service"):
        non2xx = sum(r["non_2xx"] for r in rounds[name])
        print(f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'p50_ms'):.2f} | {med(name, 'p99_ms'):.2f} "
              f"| {non2xx:.0f} |")
    print(f"\nservice / baseline throughput, per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")
    print(f"Degraded (answered without Redis) decisions: {degraded:.0f}")
    print(f"Redis calls the service sends per decision: {evalshas / decisions:.3f} scripts or module commands "
          f"(plus one GET of the graph-score version per worker per second); {decisions} decisions")
    print(f"All commands Redis counted per decision, including those the script runs inside: "
          f"{commands / decisions:.3f}")
    print(f"Redis CPU (used_cpu_user + used_cpu_sys) per decision served, per round: "
          f"{', '.join(f'{c:.1f}' for c in cpu_us)} µs (of which kernel "
          f"{', '.join(f'{c:.1f}' for c in sys_us)}; allowed "
          f"{', '.join(f'{a:.0f}' for a in allowed)}); median {statistics.median(cpu_us):.1f} µs "
          f"({args.devices} devices; answers since start, warm-up included: "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(answers.items())) + ")")
    # Time inside commands (INFO commandstats usec): what each command costs, without the protocol,
    # the event loop and the kernel; the signal consumer's commands apart from the decisions'.
    spent = sorted(((usec / decisions, command) for command, usec in inside.items() if usec > 0), reverse=True)
    print(f"Inside commands, µs per decision (INFO commandstats, all rounds; signal consumer "
          f"{'on' if args.signals else 'off'}): " + ", ".join(f"{c} {u:.1f}" for u, c in spent[:8])
          + f"; total {sum(u for u, _ in spent):.1f}")


if __name__ == "__main__":
    main()
