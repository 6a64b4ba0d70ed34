"""Cost of ``GET /v1/rules/performance``: one report over a window of N share events.

Fills a scratch Redis' share-event stream with ``--events`` decisions in the
decision scripts' format, spread over 24 h (``--hit-rate`` of them with one
or two rule codes, a fifth of those in shadow), over 20 000 devices and
60 000 users of which 5 % are labelled, and times
``rule_performance`` over the whole window, next to a bare ``XRANGE`` scan
of the same entries in the same reads as redis-py returns them by default
(dicts), in one run, best of three each, and the Redis time each read\ntakes (decisions wait meanwhile).

    .venv/bin/python bench/rule_performance.py [--events 200000] [--hit-rate 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskservice.review.labels import review_key  # noqa: E402
from riskservice.review.performance import BATCH, rule_performance  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

START = 1_800_000_000_000
DAY = 86_400_000
CODES = ("fan_out", "device_velocity", "sensitive_copy", "device_many_users", "graph_anomaly")


def fill(client: object, n: int, hit_rate: float, seed: int = 5) -> None:
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    for i in range(n):
        ms = START + i * DAY // n
        rc = ""
        dec = 0
        if rng.random() < hit_rate:
            codes = rng.sample(CODES, rng.choice((1, 1, 2)))
            rc = ",".join(c + (":shadow" if rng.random() < 0.2 else "") for c in codes)
            dec = 1 if any(not c.endswith(":shadow") for c in rc.split(",")) else 0
        req = orjson.dumps({"event_id": f"e{i}", "device_id": f"dev-{rng.randrange(20_000)}",
                            "user_id": f"user-{rng.randrange(60_000)}", "coupon_id": "cp-1"})
        pipe.xadd("risk:events", {"k": "decision", "id": f"x{i}", "t": ms, "dec": dec, "rc": rc, "req": req},
                  id=f"{ms}-{i}")
        if i % 5000 == 4999:
            pipe.execute()
    for d in range(0, 20_000, 20):
        pipe.hset(review_key("device", f"dev-{d}"), mapping={"label": "fraud" if d % 40 else "legit",
                                                               "label_by": "bench", "label_at": START})
    for u in range(0, 60_000, 20):
        pipe.hset(review_key("user", f"user-{u}"), mapping={"label": "legit", "label_by": "bench", "label_at": START})
    pipe.execute()


def bare_scan(client: object) -> int:
    n, start = 0, "-"
    while True:
        batch = client.xrange("risk:events", start, "+", count=BATCH)  # type: ignore[attr-defined]
        n += len(batch)
        if len(batch) < BATCH:
            return n
        start = "(" + batch[-1][0].decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--hit-rate", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(Path(work) / "redis").start()
        try:
            client = server.client()
            fill(client, args.events, args.hit_rate)
            # Best of three of each, interleaved: the machine is shared.
            floors, times = [], []
            client.config_resetstat()
            for _ in range(3):
                started = time.perf_counter()
                scanned = bare_scan(client)
                floors.append(time.perf_counter() - started)
                started = time.perf_counter()
                report = rule_performance(client, since_ms=START, until_ms=START + DAY)
                times.append(time.perf_counter() - started)
            floor, seconds = min(floors), min(times)
            # Redis time per read: how long each XRANGE holds the server (decisions wait meanwhile).
            per_call = client.info("commandstats")["cmdstat_xrange"]["usec_per_call"]
            client.close()
        finally:
            server.kill()
    hits = sum(r["hits"]["enforced"] + r["hits"]["shadow"] for r in report["rules"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| events | rule hits | labelled devices / users seen | bare XRANGE s | report s | report / bare "
          "| events/s | Redis µs per XRANGE |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {scanned} | {hits} | {report['labelled']['devices']} / {report['labelled']['users']} | {floor:.2f} "
          f"| {seconds:.2f} | {seconds / floor:.1f} | {report['scanned'] / seconds:.0f} | {per_call:.0f} |")


if __name__ == "__main__":
    main()
