"""The riskclient's overhead per call, against a bare ``requests.post``, side by side.

One gunicorn-served service (2 gthread workers, real Redis) and four callers,
each making the same sequential decisions (a new device per call, so every
one is an ``allow`` doing the same work), alternating in every round:

- ``requests.post``: the bare call, a new connection each time, then ``.json()``;
- ``requests.Session``: the same with a kept-alive connection;
- ``urllib3 pool``: a kept-alive urllib3 ``PoolManager`` and ``json.loads``,
  the floor riskclient is built on;
- ``riskclient``: ``RiskClient.decide`` (deadline, retry bookkeeping, typed
  ``Decision``).

Reports per-call wall time (median, p99) and this process's CPU time per
call (the client side's own work), and riskclient's ratios to each.

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskclient import RiskClient  # noqa: E402

from tests.conftest import ISSUER_KEY  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving.gunicorn_server import Gunicorn  # noqa: E402

HEADERS = {"Authorization": f"Bearer {ISSUER_KEY}"}
Caller = Callable[[dict[str, str]], str]


def callers(url: str) -> dict[str, Caller]:
    """name -> a function that sends one decision and returns its verdict."""
    session = requests.Session()
    pool = urllib3.PoolManager(maxsize=1, retries=False,
                               headers={**HEADERS, "Content-Type": "application/json"})
    client = RiskClient(url, ISSUER_KEY, timeout=1.0)
    endpoint = f"{url}/v1/decisions"

    def bare(body: dict[str, str]) -> str:
        return str(requests.post(endpoint, json=body, headers=HEADERS, timeout=1.0).json()["decision"])

    def kept(body: dict[str, str]) -> str:
        return str(session.post(endpoint, json=body, headers=HEADERS, timeout=1.0).json()["decision"])

    def floor(body: dict[str, str]) -> str:
        resp = pool.request("POST", endpoint, body=json.dumps(body).encode(), timeout=1.0)
        return str(json.loads(resp.data)["decision"])

    def ours(body: dict[str, str]) -> str:
        decision = client.decide(**body)
        if decision.local:  # a fail-mode answer made without the service would not be comparable
            raise RuntimeError(f"the client answered alone: {decision.reasons}")
        return decision.decision

    return {"requests.post": bare, "requests.Session": kept, "urllib3 pool": floor, "riskclient": ours}


def run(call: Caller, calls: int) -> dict[str, Any]:
    """``calls`` sequential decisions: per-call wall times and CPU per call in ms."""
    tag = uuid.uuid4().hex[:8]
    bodies = [{"event_id": f"e-{tag}-{i}", "device_id": f"d-{tag}-{i}", "user_id": f"u-{tag}-{i}",
               "coupon_id": "cp"} for i in range(calls)]
    walls: list[float] = []
    cpu_start = time.process_time()
    for body in bodies:
        start = time.perf_counter()
        verdict = call(body)
        walls.append((time.perf_counter() - start) * 1000)
        if verdict != "allow":
            raise RuntimeError(f"expected allow, got {verdict}")
    cpu_ms = (time.process_time() - cpu_start) * 1000 / calls
    walls.sort()
    return {"p50": statistics.median(walls), "p99": walls[int(0.99 * (len(walls) - 1))],
            "mean": statistics.fmean(walls), "cpu": cpu_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-client-"))
    redis_server = RedisServer(work / "redis").start()
    # A generous Redis budget: every caller must get the full decision, even
    # when the machine is busy.
    quiet = {"RISK_LOG_LEVEL": "WARNING", "RISK_REDIS_BUDGET_MS": "1000"}
    service = Gunicorn(work / "svc", workers=2, redis_url=redis_server.socket_url, extra_env=quiet)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        service.start()
        contenders = callers(service.url)
        for call in contenders.values():  # warm up: imports, pools, the script cache
            run(call, 200)
        names = list(contenders)
        for r in range(args.rounds):
            # Rotate the order so no caller always follows the same one.
            for name in names[r % len(names):] + names[:r % len(names)]:
                results.setdefault(name, []).append(run(contenders[name], args.calls))
    finally:
        service.stop()
        redis_server.kill()
        shutil.rmtree(work, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"requests {requests.__version__}, urllib3 {urllib3.__version__}")
    print(f"{args.calls} sequential decisions per caller per round, {args.rounds} rounds, "
          "gunicorn 2 gthread workers, Redis over a unix socket\n")
    print("| caller | p50 ms | p99 ms | mean ms | client CPU ms/call | riskclient / this (p50) |")
    print("|---|---|---|---|---|---|")
    ours = med("riskclient", "p50")
    for name in results:
        print(f"| {name} | {med(name, 'p50'):.3f} | {med(name, 'p99'):.3f} | {med(name, 'mean'):.3f} "
              f"| {med(name, 'cpu'):.3f} | {ours / med(name, 'p50'):.2f} |")
    per_round = [o["p50"] / b["p50"] for o, b in zip(results["riskclient"], results["requests.post"], strict=True)]
    print(f"\nriskclient / requests.post p50, per round: {', '.join(f'{x:.2f}' for x in per_round)}")
    cpu = med("riskclient", "cpu")
    print(f"client CPU per call, riskclient / requests.post: {cpu / med('requests.post', 'cpu'):.2f}; "
          f"riskclient / urllib3 pool: {cpu / med('urllib3 pool', 'cpu'):.2f}")


if __name__ == "__main__":
    main()
