"""The limiter alone, in-process, against the ``limits`` library on the same Redis.

Ours judges and records every window of a decision (device 5 min and 24 h,
user 24 h, distinct users per device, three blocklists, the idempotency
record) in one script call. ``limits``' moving window checks one window per
call, so it is measured for one window and for the three count windows
(three calls, and not atomic across them). Rounds alternate so that machine
noise hits every contender alike.

    .venv/bin/python bench/limiter.py [--checks 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from limits import RateLimitItemPerDay, RateLimitItemPerSecond  # noqa: E402
from limits.storage import storage_from_string  # noqa: E402
from limits.strategies import MovingWindowRateLimiter  # noqa: E402

from riskservice.limits.client import connect  # noqa: E402
from riskservice.limits.keys import decision_keys  # noqa: E402
from riskservice.limits.store import RedisStore  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

DEVICES = 1000


def rate(fn: Callable[[int], object], checks: int, offset: int) -> float:
    start = time.perf_counter()
    for i in range(offset, offset + checks):
        fn(i)
    return checks / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-limiter-"))
    server = RedisServer(work).start()
    try:
        store = RedisStore(connect(server.url, 1000))
        plan = load_policy(ROOT / "config" / "policy.yaml").default.plan

        def ours(i: int) -> object:
            device, user = f"dev-{i % DEVICES}", f"user-{i % (DEVICES * 3)}"
            return store.decide(decision_keys(f"ev-{i}", device, user, "203.0.113.9"), user_id=user, plan=plan,
                                findings=b"[]", fingerprint="f", decision_id=f"id-{i}", now_ms=None,
                                ttl_ms=86_400_000)

        limiter = MovingWindowRateLimiter(storage_from_string(server.url))
        velocity, daily = RateLimitItemPerSecond(20, 300), RateLimitItemPerDay(50)

        def limits_one(i: int) -> object:
            return limiter.hit(velocity, "dev", str(i % DEVICES))

        def limits_three(i: int) -> object:
            device, user = str(i % DEVICES), str(i % (DEVICES * 3))
            return (limiter.hit(velocity, "dev", device) and limiter.hit(daily, "dev", device)
                    and limiter.hit(daily, "user", user))

        contenders = {"ours: every window, one script call": ours,
                      "limits moving window: 1 window": limits_one,
                      "limits moving window: 3 windows (3 calls)": limits_three}
        results: dict[str, list[float]] = {name: [] for name in contenders}
        for fn in contenders.values():  # warm up
            rate(fn, 500, 10_000_000)
        for r in range(args.rounds):
            for name, fn in contenders.items():
                results[name].append(rate(fn, args.checks, r * args.checks))
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(results["limits moving window: 1 window"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.checks} checks x {args.rounds} rounds over {DEVICES} devices, Redis over TCP loopback\n")
    print("| limiter | checks/s (median) | vs limits, 1 window |")
    print("|---|---|---|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.0f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
