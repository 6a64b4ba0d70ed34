"""What the signal board costs: its size, how often it changes, and what a
worker's check and re-read cost Redis.

A simulated workload's recorded decisions and outcomes are fed straight into
a :class:`SignalEngine` (no decision path: the recording's own decisions), in
event time. Reported: the board's largest and final number of entries, its
versions per hour of event time (each version makes every worker re-read the
board once, at most once a second), then the final board written to a
scratch Redis: its ``MEMORY USAGE`` and the Redis time per call
(``INFO commandstats``) of a worker's check (``HGET`` of the version) and of
its re-read (``HGETALL``), side by side.

    .venv/bin/python bench/signals_board.py [--users 10000] [--seeds 1 2] [--profiles mixed]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.workload.simulate import simulate  # noqa: E402
from riskservice.signals.board import BOARD_KEY, VERSION_FIELD  # noqa: E402
from riskservice.signals.engine import SignalEngine  # noqa: E402
from riskservice.signals.share import Outcome, Share  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def replay(events: list[dict[str, Any]]) -> tuple[SignalEngine, int, int, float]:
    """Feed the recording into an engine; (engine, largest board, versions, hours of event time)."""
    items: list[tuple[int, int, Share | Outcome]] = []
    for ev in events:
        t = round(ev["ts"] * 1000)
        items.append((t, 0, Share(ev["decision_id"], t, ev["user_id"], ev.get("device_id") or "",
                                  ev["coupon_id"], tuple(dict.fromkeys(ev.get("recipients") or ())),
                                  ev["decision"] == "allow" or bool(ev.get("challenge_passed")))))
        for report in ev.get("outcome_history") or (
                [[ev["ts"], ev["delivered"], ev["opened"], ev["claimed"]]] if ev.get("delivered") is not None else []):
            items.append((round(report[0] * 1000), 1, Outcome(ev["decision_id"], round(report[0] * 1000),
                                                              report[1], report[3])))
    items.sort(key=lambda x: (x[0], x[1]))
    engine = SignalEngine()
    largest = 0
    for _, _, item in items:
        if isinstance(item, Share):
            engine.share(item)
        else:
            engine.outcome(item)
        largest = max(largest, len(engine.board.entries))
    hours = (items[-1][0] - items[0][0]) / 3_600_000 if items else 0.0
    return engine, largest, engine.board.changes, hours


def call_us(client: redis.Redis, command: str) -> float:
    stats = cast(dict[str, Any], client.info("commandstats")).get(f"cmdstat_{command}", {})
    return float(stats.get("usec_per_call", 0.0))


def redis_costs(client: redis.Redis, engine: SignalEngine, rounds: int) -> tuple[int, float, float]:
    """Write the final board; (bytes, HGET µs per call, HGETALL µs per call)."""
    client.delete(BOARD_KEY)
    fields = {k: f"{v}@{u}" for k, (v, u) in engine.board.entries.items()}
    client.hset(BOARD_KEY, mapping={**fields, VERSION_FIELD: "1"})
    client.config_resetstat()
    for _ in range(rounds):  # alternating, so both see the same machine
        client.hget(BOARD_KEY, VERSION_FIELD)
        client.hgetall(BOARD_KEY)
    return int(cast(int, client.memory_usage(BOARD_KEY)) or 0), call_us(client, "hget"), call_us(client, "hgetall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[3000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--profiles", nargs="+", default=["mixed"], choices=["default", "hard", "mixed"])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| workload | share events | board entries (largest / final) | versions per hour | board bytes "
          "| HGET version, µs | HGETALL board, µs |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        server = RedisServer(Path(scratch)).start()
        try:
            client = server.client()
            for profile in args.profiles:
                for users in args.users:
                    for seed in args.seeds:
                        events, _ = simulate(users, seed, profile=profile, fan_out_challenges=True)
                        engine, largest, versions, hours = replay(events)
                        size, hget, hgetall = redis_costs(client, engine, args.rounds)
                        print(f"| {profile}, {users} users, seed {seed} | {len(events)} "
                              f"| {largest} / {len(engine.board.entries)} | {versions / max(hours, 1e-9):.1f} "
                              f"| {size} | {hget:.2f} | {hgetall:.2f} |", flush=True)
            # The bound: a board at its cap (SignalConfig.board_cap).
            full = SignalEngine()
            cap = full.config.board_cap
            for i in range(cap):
                full.board.entries[f"r|u{i:07d}"] = (5, 1_760_000_000_000 + i)
            size, hget, hgetall = redis_costs(client, full, max(args.rounds // 10, 50))
            print(f"| a full board | - | {cap} / {cap} | - | {size} | {hget:.2f} | {hgetall:.2f} |")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
