"""Decision latency with and without a crowd of idle and slow-header connections.

Starts the service as ``make run`` does (gunicorn, ``config/gunicorn.conf.py``,
2 workers) on a scratch Redis, then alternates rounds in one run: decisions
alone, then the same decisions while 1000 silent connections and 100
connections dribbling their headers a byte every half second stay open.
Reports p50/p99 latency, answers and time-outs of each, and the p99 ratio
(crowd / alone). ``--worker-class gthread`` measures the old thread pool.

    .venv/bin/python bench/slow_clients.py [--idle 1000] [--dribbling 100] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import ISSUER  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving.gunicorn_server import Gunicorn  # noqa: E402
from tests.serving.slow_clients import SlowClients  # noqa: E402

CLIENT_TIMEOUT_S = 5.0
_ids = itertools.count()


def raise_fd_limit(needed: int) -> int:
    """Lift this process's open-file limit towards ``needed`` (the crowd's sockets); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load(url: str, seconds: float, clients: int) -> dict[str, float]:
    """``clients`` threads posting decisions back to back on kept-alive sessions for ``seconds``."""
    latencies: list[float] = []
    timeouts = errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal timeouts, errors
        with requests.Session() as session:
            while time.monotonic() < stop:
                i = next(_ids)
                body = {"event_id": f"bench-{i}", "device_id": f"dev-{i % 500}", "user_id": f"u-{i % 1500}",
                        "coupon_id": "c1", "recipient_count": 2}
                started = time.perf_counter()
                try:
                    resp = session.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=CLIENT_TIMEOUT_S)
                except requests.Timeout:
                    with lock:
                        timeouts += 1
                    continue
                except requests.ConnectionError:
                    with lock:
                        errors += 1
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if resp.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else (lambda q: 0.0)
    return {"answered": float(len(latencies)), "timeouts": float(timeouts), "errors": float(errors),
            "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--dribbling", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="threads posting decisions")
    parser.add_argument("--worker-class", default=None, help="override RISK_WORKER_CLASS (e.g. gthread)")
    args = parser.parse_args()
    limit = raise_fd_limit(args.idle + args.dribbling + 200)
    extra = {"RISK_WORKER_CLASS": args.worker_class} if args.worker_class else {}
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        server = Gunicorn(Path(tmp) / "gunicorn", workers=2, redis_url=redis_server.url, extra_env=extra)
        try:
            server.start()
            load(server.url, 2, args.clients)  # warm up: connections, scripts, caches
            rows: list[tuple[str, dict[str, float]]] = []
            for r in range(args.rounds):
                alone = load(server.url, args.seconds, args.clients)
                with SlowClients("127.0.0.1", server.port, args.idle, args.dribbling) as crowd:
                    opened = crowd.open_count()
                    crowded = load(server.url, args.seconds, args.clients)
                    crowded["crowd_open"] = float(sum(crowd.open_count()))
                    crowded["crowd_reopened"] = float(crowd.reopened)
                    crowded["crowd_refused"] = float(crowd.refused)
                print(f"round {r + 1}: crowd opened {opened}", file=sys.stderr)
                rows += [(f"{r + 1} alone", alone), (f"{r + 1} crowd", crowded)]
        finally:
            server.stop()
            redis_server.kill()
    worker = args.worker_class or os.environ.get("RISK_WORKER_CLASS", "gevent (config default)")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"fd limit {limit}; worker class {worker}, 2 workers; {args.clients} client threads, "
          f"{args.seconds:g} s per phase; crowd {args.idle} idle + {args.dribbling} dribbling")
    print("| round | answered | time-outs | errors | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['answered']:.0f} | {row['timeouts']:.0f} | {row['errors']:.0f} | "
              f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    starved = [name for _, (name, crowd) in pairs if crowd["answered"] == 0]
    if starved:
        print(f"no decision answered with the crowd in rounds {', '.join(starved)}: no p99 to compare")
    ratios = [crowd["p99_ms"] / alone["p99_ms"] for (_, alone), (_, crowd) in pairs
              if alone["p99_ms"] > 0 and crowd["answered"] > 0]
    if ratios:
        print(f"p99 ratio crowd/alone per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
