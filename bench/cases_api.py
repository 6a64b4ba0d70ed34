"""Latency of the case list and case pages with 10 000 open cases, over real HTTP (gunicorn) and Redis.

Writes ``--open`` open cases (plus one resolved case for every ten open,
interleaved in the ranking, so the list has to skip them) of ``--members``
members each, with evidence and a subgraph, through the real write-back.
Then, one request at a time from one client, times ``--requests`` calls of
each route and reports p50 / p95 / p99 in ms, next to ``/healthz`` on the
same server (the floor of an HTTP round trip through gunicorn and Flask).

Usage::

    .venv/bin/python bench/cases_api.py --open 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskservice.graph_store import write_back  # noqa: E402
from riskservice.review import case_actions  # noqa: E402
from tests.cases.helpers import case  # noqa: E402
from tests.conftest import ANALYST  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving.gunicorn_server import Gunicorn  # noqa: E402


def seed_cases(client: Any, n_open: int, members: int) -> list[str]:
    """``n_open`` open cases and ``n_open // 10`` resolved ones; returns the resolved ids."""
    total = n_open + n_open // 10
    cases = [case([f"u{i}-{k}" for k in range(members - 2)], [f"d{i}-a", f"d{i}-b"], score=round(10 - i / total, 6),
                  summary=f"{members - 2} accounts on 2 devices sharing coupon cp_{i % 97}") for i in range(total)]
    write_back(client, [], cases=cases)
    resolved = [f"c{i + 1}" for i in range(0, total, 11)][: n_open // 10]
    for case_id in resolved:
        case_actions.apply(client, case_id, case_actions.CaseActionRequest(action="dismiss", reason="bench"),
                           actor="bench", now_ms=1_763_800_000_000)
    return resolved


def timed(session: requests.Session, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        resp = session.get(url, timeout=10)
        out.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
    return out


def stats(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"p50": round(statistics.median(ms), 2), "p95": round(q[94], 2), "p99": round(q[98], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--open", type=int, default=10_000)
    p.add_argument("--members", type=int, default=20)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        redis_server = RedisServer(work / "redis").start()
        service = None
        try:
            client = redis_server.client()
            t = time.perf_counter()
            seed_cases(client, a.open, a.members)
            seed_s = time.perf_counter() - t
            service = Gunicorn(work / "svc", workers=2, redis_url=redis_server.socket_url).start()
            s = requests.Session()
            s.headers.update(ANALYST)
            base = service.url
            first = s.get(f"{base}/v1/review/cases?limit=50", timeout=10).json()
            assert len(first["cases"]) == 50 and first["next_cursor"]
            cursor = first["next_cursor"]
            middle = max(1, a.open // 100)  # the middle page: at 10 000, page 100 of 200
            for _ in range(middle - 1):
                cursor = s.get(f"{base}/v1/review/cases?limit=50&cursor={cursor}", timeout=10).json()["next_cursor"]
            case_id = first["cases"][0]["case_id"]
            routes = {
                "/healthz (floor)": f"{base}/healthz",
                "list, first page (50)": f"{base}/v1/review/cases?limit=50",
                f"list, page {middle} (cursor)": f"{base}/v1/review/cases?limit=50&cursor={cursor}",
                "list, 200 a page": f"{base}/v1/review/cases?limit=200",
                "case page (JSON)": f"{base}/v1/review/cases/{case_id}",
                "console list fragment": f"{base}/console/cases",
                "console case fragment": f"{base}/console/cases/{case_id}",
            }
            results: dict[str, Any] = {"open": a.open, "resolved": a.open // 10, "members": a.members,
                                       "seed_s": round(seed_s, 2), "routes": {}}
            for name, url in routes.items():
                timed(s, url, 20)  # warm up both workers
                results["routes"][name] = stats(timed(s, url, a.requests))
            floor = results["routes"]["/healthz (floor)"]["p50"]
            for r in results["routes"].values():
                r["p50_over_floor"] = round(r["p50"] / floor, 1)
            print(json.dumps(results, indent=2))
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
            if a.json:
                a.json.write_text(json.dumps(results, indent=2))
        finally:
            if service is not None:
                service.stop()
            redis_server.kill()


if __name__ == "__main__":
    main()
