"""What the real-time signals cost Redis and memory.

1. The consumer: a simulated workload (``graphs.workload``, planted fraud
   included) is replayed through the decision path onto a scratch Redis
   without signals, which fills the share-event stream; then the consumer
   follows the stream from its start in batches, as in service. Redis CPU
   (``used_cpu_sys + used_cpu_user`` of ``INFO cpu``, minus an idle period of
   the same wall time) per stream entry, the consumer's own CPU per entry,
   the writes, and the memory of its state per tracked entity (tracemalloc)
   and of the ``:sig`` hashes in Redis (``MEMORY USAGE``).
2. The decision path: script time per call (``INFO commandstats``) of the
   same decisions (``decide.lua``) with and without the signals' key (a
   populated ``:sig`` hash), and of the signals' block alone against an empty
   script, side by side in alternating rounds.

    .venv/bin/python bench/signals_redis.py [--users 10000] [--seed 1] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.workload.simulate import simulate  # noqa: E402
from riskservice.backtest import run_backtest  # noqa: E402
from riskservice.limits.client import connect  # noqa: E402
from riskservice.limits.keys import EVENTS, decision_keys  # noqa: E402
from riskservice.limits.store import RedisStore  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from riskservice.signals.consumer import SignalConsumer  # noqa: E402
from tests.limits.args import decide_args  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def cpu(client: redis.Redis) -> float:
    info = cast(dict[str, Any], client.info("cpu"))
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def idle_cpu(client: redis.Redis, seconds: float) -> float:
    before = cpu(client)
    time.sleep(seconds)
    return cpu(client) - before


def consumer_cost(client: redis.Redis, users: int, seed: int, batch: int) -> None:
    events, _ = simulate(users, seed)
    policy = load_policy(ROOT / "config" / "policy.yaml")
    url = f"redis://localhost:{client.connection_pool.connection_kwargs['port']}"
    run_backtest(events, policy, examples=0, redis_url=url, signals=False)
    entries = client.xlen(EVENTS)
    client.xgroup_create(EVENTS, "signals", id="0")
    consumer = SignalConsumer(client, batch=batch)
    redis_before, own_before, wall = cpu(client), time.process_time(), time.perf_counter()
    while consumer.poll():
        pass
    wall = time.perf_counter() - wall
    redis_cpu = cpu(client) - redis_before - idle_cpu(client, wall)
    own = time.process_time() - own_before
    # Again in another group, under tracemalloc, for the size of the state (it writes the same values).
    client.xgroup_create(EVENTS, "signals-memory", id="0")
    again = SignalConsumer(client, group="signals-memory", batch=batch)
    tracemalloc.start()
    before_mem = tracemalloc.get_traced_memory()[0]
    while again.poll():
        pass
    state = tracemalloc.get_traced_memory()[0] - before_mem
    tracemalloc.stop()
    engine = again.engine
    tracked = sum(len(m) for s in engine.signals for m in vars(s).values() if hasattr(m, "touch"))
    keys = list(client.scan_iter("risk:{d:*}:sig", count=1000))
    sig_bytes = sum(int(cast(int, client.memory_usage(k))) for k in keys)
    devices = len({e["device_id"] for e in events})
    print(f"\nconsumer, {users} users seed {seed}: {entries} stream entries ({len(events)} shares), batch {batch}")
    print("| Redis CPU per entry | consumer CPU per entry | writes | entries/s | state | tracked entities "
          "| state per entity | :sig hashes | bytes per hash |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {redis_cpu / entries * 1e6:.1f} µs | {own / entries * 1e6:.0f} µs | {consumer.writes} "
          f"| {entries / wall:.0f} | {state / 1e6:.1f} MB | {tracked} | {state / max(tracked, 1):.0f} B "
          f"| {len(keys)} of {devices} devices | {sig_bytes / max(len(keys), 1):.0f} |")


# The signals' block of decide.lua on its own: one HMGET of the device's
# hash, then per field the parse and, for a value present, the plan's
# enabled flag and threshold; against a script that does nothing.
BLOCK = """
local plan, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local sig = redis.call('HMGET', KEYS[1], 'r', 'l|' .. user, 'f|' .. user, 'd|' .. user, 'c|' .. user)
local fired = 0
for i = 1, 5 do
  local value, untl = string.match(sig[i] or '', '^([^@]+)@(%d+)$')
  local observed, id = tonumber(value), 10 + i
  if observed and now < tonumber(untl) and struct.unpack('>B', plan, (id - 1) * 24 + 1) == 1
     and observed >= struct.unpack('>d', plan, (id - 1) * 24 + 2) then
    fired = fired + 1
  end
end
return fired
"""
EMPTY = "return 0"


def usec_per_call(client: redis.Redis) -> float:
    return float(cast(dict[str, Any], client.info("commandstats"))["cmdstat_evalsha"]["usec_per_call"])


def decision_cost(client: redis.Redis, decisions: int, rounds: int) -> None:
    """Script time per call (``INFO commandstats``), side by side in alternating rounds."""
    store = RedisStore(connect(f"redis://localhost:{client.connection_pool.connection_kwargs['port']}", 2000))
    plan = load_policy(ROOT / "config" / "policy.yaml").default.plan
    results: dict[str, list[float]] = {"decide.lua without the signals' key": [],
                                       "decide.lua with it": [], "nothing (return 0)": [],
                                       "the signals' block alone": []}
    labels = list(results)
    now = 1_760_000_000_000
    n = 0
    block, empty = client.script_load(BLOCK), client.script_load(EMPTY)
    for _ in range(rounds):
        for label, values in results.items():
            client.flushall()
            for d in range(200):
                # Every device's hash holds a device value and its sharer's four, below the thresholds.
                client.hset(f"risk:{{d:dev-{d}}}:sig", mapping={
                    "r": f"2@{now * 2}", **{f"{f}|user-{d}": f"1@{now * 2}" for f in "lfdc"}})
            client.config_resetstat()
            for i in range(decisions):
                n += 1
                device, user = f"dev-{i % 200}", f"user-{i % 200}"
                if label in labels[2:]:
                    sha = block if label == labels[3] else empty
                    client.evalsha(sha, 1, f"risk:{{d:{device}}}:sig", plan, user, now)
                    continue
                keys = decision_keys(f"e{n}", device, user, None, f"id{n}")
                if label == labels[0]:
                    keys = keys._replace(signals="")
                store.decide(keys, decide_args(now=now + n * 1000, decision_id=f"id{n}", user_id=user,
                                               device_id=device, plan=plan))
            values.append(usec_per_call(client))
    store.close()
    print(f"\ndecision path: script time per call (INFO commandstats), {decisions} calls x {rounds} rounds each, "
          "200 devices")
    print("| script | µs per call (median of rounds) |")
    print("|---|---|")
    medians = {label: sorted(v)[len(v) // 2] for label, v in results.items()}
    for label, value in medians.items():
        print(f"| {label} | {value:.2f} |")
    print(f"| the block's own cost (block - nothing) | {medians[labels[3]] - medians[labels[2]]:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            client = server.client()
            consumer_cost(client, args.users, args.seed, args.batch)
            decision_cost(client, args.decisions, args.rounds)
        finally:
            server.kill()


if __name__ == "__main__":
    main()
