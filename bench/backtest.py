"""Backtest throughput: recorded share events replayed per second.

Generates ``--events`` share events (decisions over a few thousand devices and
users, two thirds with an outcome report, some challenges) in the export
format and times ``run_backtest`` on its own scratch Redis, as
``python -m riskservice backtest`` does.

    .venv/bin/python bench/backtest.py [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskservice.backtest import run_backtest  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    ts = 1_763_000_000.0
    events = []
    for i in range(n):
        ts += rng.expovariate(1 / 0.5)
        device = f"dev-{rng.randrange(5000)}"
        ev: dict[str, Any] = {
            "event_id": f"e{i}", "device_id": device, "user_id": f"user-{rng.randrange(15000)}",
            "coupon_id": f"cp-{rng.randrange(300)}", "merchant_id": f"m-{rng.randrange(20)}", "channel": "group",
            "recipients": [f"r{rng.randrange(50000)}" for _ in range(rng.choice([1, 2, 3, 12]))],
            "ts": round(ts, 3), "decision": "allow", "decision_id": f"x{i}", "reasons": [], "shadow": [],
            "delivered": None, "opened": None, "claimed": None, "challenge_passed": None, "outcome_history": [],
        }
        if len(ev["recipients"]) > 10:
            ev["decision"], ev["reasons"] = "challenge", ["fan_out"]
            ev["challenge_passed"], ev["challenge_ts"] = rng.random() < 0.7, round(ts + 20, 3)
        elif rng.random() < 0.67:
            claimed = int(rng.random() < 0.4)
            ev["outcome_history"] = [[round(ts + 60, 3), 1, 1, claimed]]
            ev["delivered"], ev["opened"], ev["claimed"] = 1, 1, claimed
        events.append(ev)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    events = generate(args.events)
    policy = load_policy(ROOT / "config" / "policy.yaml")
    started = time.perf_counter()
    result = run_backtest(events, policy)
    seconds = time.perf_counter() - started
    replayed = result.decisions + result.outcomes + result.challenges
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| events | decisions | outcome reports | challenge results | seconds | events/s | decisions/s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.events} | {result.decisions} | {result.outcomes} | {result.challenges} | {seconds:.1f} "
          f"| {replayed / seconds:.0f} | {result.decisions / seconds:.0f} |")
    print(f"\n(decisions changed by the default policy against the generated record: {result.changed})")


if __name__ == "__main__":
    main()
