"""Decisions per second with outcomes flowing (one outcome report per allowed
decision), against decisions alone, on the same service in one run.

    .venv/bin/python bench/http_outcomes.py [--seconds 10] [--rounds 3]

Needs ``wrk``. Rounds alternate so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_decisions import wrk  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving.gunicorn_server import Gunicorn  # noqa: E402


def counter(url: str, endpoint: str) -> float:
    """Successful requests to an endpoint so far, from /metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    prefix = f'risk_requests_total{{endpoint="{endpoint}",status="200"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-outcomes-"))
    redis_server = RedisServer(work / "redis").start()
    env = {"RISK_LOG_LEVEL": "WARNING", "RISK_REDIS_BUDGET_MS": "50"}
    service = Gunicorn(work / "svc", workers=2, redis_url=redis_server.socket_url, extra_env=env)
    rates: dict[str, list[float]] = {"decisions only": [], "decisions + outcomes": []}
    outcome_rates: list[float] = []
    try:
        service.start()
        wrk(service.url, 2, args.connections, 2)
        for _ in range(args.rounds):
            for name, script in (("decisions only", "decisions.lua"), ("decisions + outcomes", "outcomes.lua")):
                d0, o0 = counter(service.url, "/v1/decisions"), counter(service.url, "/v1/outcomes")
                wrk(service.url, args.seconds, args.connections, 2, script)
                d1, o1 = counter(service.url, "/v1/decisions"), counter(service.url, "/v1/outcomes")
                rates[name].append((d1 - d0) / args.seconds)
                if script == "outcomes.lua":
                    outcome_rates.append((o1 - o0) / args.seconds)
    finally:
        service.stop()
        redis_server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"wrk -t2 -c{args.connections} -d{args.seconds}s x {args.rounds} rounds, gunicorn 2 gthread workers\n")
    print("| load | decisions/s (median) | outcomes/s (median) |")
    print("|---|---|---|")
    print(f"| decisions only | {statistics.median(rates['decisions only']):.0f} | - |")
    print(f"| decisions + outcomes | {statistics.median(rates['decisions + outcomes']):.0f} "
          f"| {statistics.median(outcome_rates):.0f} |")
    ratio = [b / a for a, b in zip(rates["decisions only"], rates["decisions + outcomes"], strict=True)]
    print(f"\ndecisions/s with outcomes flowing / without, per round: {', '.join(f'{r:.2f}' for r in ratio)}")


if __name__ == "__main__":
    main()
