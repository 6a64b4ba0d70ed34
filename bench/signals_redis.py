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

3. With ``--cluster``: the consumer on one Redis and on a 3-master Redis
   Cluster (tests/cluster_server.py, the same redis-server binary), side by
   side on the same entries: the single stream is copied, entry by entry
   with its id, into the shard of its device's slot (where the cluster's
   decision scripts append it), and each consumer catches up from the start.
   Redis CPU is summed over the masters. Then each consumer is left idle
   (nothing new to read) for ``--idle`` seconds: the Redis CPU per second
   it costs by polling, with the workload's shards and with every slot's
   shard followed. The decision path is not measured in this mode.

    .venv/bin/python bench/signals_redis.py [--users 10000] [--seed 1] [--decisions 20000]
        [--profiles default hard mixed] [--consumer-only]
    .venv/bin/python bench/signals_redis.py --cluster [--users 10000] [--batch 100] [--idle 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.workload.simulate import simulate  # noqa: E402
from riskservice.backtest import run_backtest  # noqa: E402
from riskservice.limits.client import connect  # noqa: E402
from riskservice.limits.keys import EVENTS, decision_keys, device_tag, events_shard, signals_key, slot_shard  # noqa: E402
from riskservice.limits.slots import SLOTS, key_slot  # noqa: E402
from riskservice.limits.store import RedisStore  # noqa: E402
from riskservice.limits.topology import connect_cluster  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from riskservice.signals.consumer import SignalConsumer  # noqa: E402
from tests.cluster_server import RedisClusterServer  # noqa: E402
from tests.limits.args import decide_args  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def cpu(client: redis.Redis) -> float:
    info = cast(dict[str, Any], client.info("cpu"))
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def idle_cpu(client: redis.Redis, seconds: float) -> float:
    before = cpu(client)
    time.sleep(seconds)
    return cpu(client) - before


def consumer_cost(client: redis.Redis, users: int, seed: int, batch: int, profile: str = "default") -> None:
    events, _ = simulate(users, seed, profile)
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
    print(f"\nconsumer, {profile} profile, {users} users seed {seed}: {entries} stream entries "
          f"({len(events)} shares), batch {batch}")
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
                keys = decision_keys(f"e{n}", device, user, None)
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


def cluster_cpu(cluster: RedisClusterServer) -> float:
    """Redis CPU of every master, summed."""
    total = 0.0
    for node in cluster.nodes:
        if node.role == "master":
            with node.client() as c:
                total += cpu(cast(redis.Redis, c))
    return total


def copy_to_shards(single: redis.Redis, cluster: redis.RedisCluster) -> int:
    """Every entry of the single stream, with its id, into its device's shard; how many."""
    device_of: dict[bytes, str] = {}
    pipe: Any = cluster.pipeline(transaction=False)  # type: ignore[no-untyped-call]
    n = 0
    for entry_id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], single.xrange(EVENTS)):
        if fields[b"k"] == b"decision":
            device_of[fields[b"id"]] = str(orjson.loads(fields[b"req"]).get("device_id", ""))
        device = device_of.get(fields.get(b"id", b""), "")
        pipe.xadd(events_shard(device_tag(device)), fields, id=entry_id)
        n += 1
        if n % 2000 == 0:
            pipe.execute()
            pipe = cluster.pipeline(transaction=False)  # type: ignore[no-untyped-call]
    pipe.execute()
    return n


# What the consumer sends (a producer only sends XADD), for INFO commandstats.
CONSUMER_COMMANDS = ("xreadgroup", "xlen", "xrange", "xgroup", "exists", "hset", "hdel", "pexpire", "time")


def commands(nodes: list[redis.Redis], by_name: dict[str, int] | None = None) -> tuple[int, float]:
    """Calls and µs of execution of the consumer's commands on ``nodes`` since
    the last reset (``INFO commandstats``: the commands' own time, without
    reading and parsing them, so exact but below the CPU they cost); the
    calls of each command are added to ``by_name``."""
    calls, usec = 0, 0.0
    for node in nodes:
        stats = cast(dict[str, Any], node.info("commandstats"))
        for name in CONSUMER_COMMANDS:
            row = stats.get(f"cmdstat_{name}")
            if row:
                calls, usec = calls + int(row["calls"]), usec + float(row["usec"])
                if by_name is not None:
                    by_name[name] = by_name.get(name, 0) + int(row["calls"])
    return calls, usec


def reset(nodes: list[redis.Redis]) -> None:
    for node in nodes:
        node.config_resetstat()


def catch_up(consumer: SignalConsumer, redis_cpu: Any, nodes: list[redis.Redis]
             ) -> tuple[float, float, float, tuple[int, float]]:
    """Follow from the start of every shard until nothing is left: (wall s,
    own CPU s, Redis CPU s, the consumer's commands)."""
    reset(nodes)
    redis_before, own_before, wall = redis_cpu(), time.process_time(), time.perf_counter()
    while consumer.poll():
        pass
    wall = time.perf_counter() - wall
    return wall, time.process_time() - own_before, redis_cpu() - redis_before, commands(nodes)


def idle_cost(consumer: SignalConsumer, redis_cpu: Any, seconds: float, nodes: list[redis.Redis]) -> str:
    """Redis CPU per second of ``consumer.run`` with nothing to read (minus
    Redis's own idle CPU), and the consumer's commands per second, as table cells."""
    base = redis_cpu()
    time.sleep(seconds)
    quiet = redis_cpu() - base
    consumer.stopping.clear()
    thread = threading.Thread(target=consumer.run, kwargs={"block_ms": 200})
    reset(nodes)
    before = redis_cpu()
    thread.start()
    time.sleep(seconds)
    consumer.stop()
    thread.join()
    used = float(redis_cpu() - before - quiet) / seconds
    calls, usec = commands(nodes)
    return f"{used * 1e3:.2f} ms | {calls / seconds:.0f} | {usec / seconds / 1e3:.2f} ms"


LIVE = "risk:live"


def produce(target: redis.Redis | redis.RedisCluster, entries: list[tuple[bytes, dict[bytes, bytes], str]],
            base: str, rate: int) -> None:
    """XADD ``entries`` (with their ids) into ``base`` (its device's shard on a cluster) at ``rate`` per second."""
    step = max(rate // 20, 1)  # every 50 ms
    started = time.perf_counter()
    cluster = isinstance(target, redis.RedisCluster)
    for i in range(0, len(entries), step):
        pipe: Any = target.pipeline(transaction=False)
        for entry_id, fields, device in entries[i:i + step]:
            key = slot_shard(base, key_slot(device_tag(device))) if cluster else base
            pipe.xadd(key, fields, id=entry_id)
        pipe.execute()
        ahead = started + (i + step) / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)


def live_cost(target: redis.Redis | redis.RedisCluster, entries: list[tuple[bytes, dict[bytes, bytes], str]],
              redis_cpu: Any, rate: int, run: str, nodes: list[redis.Redis], warm: bool) -> str:
    """Entries produced at ``rate`` without, then with a consumer following
    them, as table cells: the consumer's Redis CPU per entry, its commands
    and their time per entry, the share of entries it fed, and how long
    after the last entry was produced it finished."""
    quiet_base, base = f"{LIVE}:{run}:alone", f"{LIVE}:{run}"
    if warm:
        # As in a service that has run a while: every shard the entries go to
        # exists already (an entry far older than the window, which nothing reads).
        one_per_shard = {key_slot(device_tag(e[2])): e[2] for e in entries}.values() \
            if isinstance(target, redis.RedisCluster) else [""]
        for key in (quiet_base, base):
            produce(target, [(b"1-0", {b"k": b"filler"}, device) for device in one_per_shard], key, 10**9)
    before = redis_cpu()
    produce(target, entries, quiet_base, rate)
    alone = redis_cpu() - before
    consumer = SignalConsumer(target, stream=base)
    consumer.start()
    thread = threading.Thread(target=consumer.run, kwargs={"block_ms": 200})
    reset(nodes)
    before = redis_cpu()
    thread.start()
    produce(target, entries, base, rate)
    produced = time.perf_counter()
    deadline = produced + 30
    while consumer.engine.entries < len(entries) and time.perf_counter() < deadline:
        time.sleep(0.01)
    done = time.perf_counter() - produced
    consumer.stop()
    thread.join()
    used = redis_cpu() - before - alone
    by_name: dict[str, int] = {}
    calls, usec = commands(nodes, by_name)
    n = len(entries)
    mix = ", ".join(f"{name} {count / n:.2f}" for name, count in sorted(by_name.items(), key=lambda kv: -kv[1]))
    return (f"{used / n * 1e6:.1f} µs | {calls / n:.2f} ({mix}) | {usec / n:.2f} µs | "
            f"{consumer.engine.entries / n:.0%} | {done:.2f} s")


def cluster_side_by_side(users: int, seed: int, batch: int, idle: float, tmp: Path, rate: int) -> None:
    events, _ = simulate(users, seed)
    policy = load_policy(ROOT / "config" / "policy.yaml")
    server = RedisServer(tmp / "single").start()
    cluster = RedisClusterServer(tmp / "cluster").start()
    try:
        single = server.client()
        run_backtest(events, policy, examples=0, redis_url=server.url, signals=False)
        client = connect_cluster(cluster.url, 5000)
        entries = copy_to_shards(single, client)
        devices = sorted({str(e["device_id"]) for e in events if e.get("device_id")})
        one = SignalConsumer(single, batch=batch)
        one.shards.place_groups({EVENTS: "0"})
        many = SignalConsumer(client, batch=batch)
        many.shards.discover(force=True)
        many.shards.place_groups(dict.fromkeys(many.shards.followed.values(), "0"))
        masters = [node.client() for node in cluster.nodes if node.role == "master"]
        rows = []
        for label, consumer, redis_cpu, nodes in (("one Redis", one, lambda: cpu(single), [single]),
                                                  ("3-master cluster", many, lambda: cluster_cpu(cluster), masters)):
            wall, own, used, (calls, usec) = catch_up(consumer, redis_cpu, nodes)
            rows.append((label, consumer, wall, own, used, calls, usec))
        flags_one = {d: single.hgetall(signals_key(d)) for d in devices}
        flags_many = {d: client.hgetall(signals_key(d)) for d in devices}
        print(f"\nconsumer on one Redis and on the cluster: {users} users seed {seed}, {entries} stream entries, "
              f"{len(many.shards.followed)} shards on the cluster, batch {batch} (per shard on the cluster)")
        print("| deployment | entries/s | Redis CPU per entry | commands per entry | their time per entry "
              "| consumer CPU per entry | writes |")
        print("|---|---|---|---|---|---|---|")
        for label, consumer, wall, own, used, calls, usec in rows:
            print(f"| {label} | {entries / wall:.0f} | {used / entries * 1e6:.1f} µs | {calls / entries:.2f} "
                  f"| {usec / entries:.2f} µs | {own / entries * 1e6:.0f} µs | {consumer.writes} |")
        print(f"same flags on both: {flags_one == flags_many} ({sum(1 for v in flags_one.values() if v)} hashes)")
        print(f"\nidle consumer, {idle:.0f} s: Redis CPU per second of wall time (polling every 200 ms)")
        print("| deployment | shards followed | Redis CPU per s | commands per s | their time per s |")
        print("|---|---|---|---|---|")
        print(f"| one Redis (blocking read) | 1 | {idle_cost(one, lambda: cpu(single), idle, [single])} |")
        print(f"| 3-master cluster | {len(many.shards.followed)} "
              f"| {idle_cost(many, lambda: cluster_cpu(cluster), idle, masters)} |")
        # Every slot's shard: one entry no signal reads in each, then followed.
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for slot in range(SLOTS):
            pipe.xadd(slot_shard(EVENTS, slot), {"k": "filler"})
        pipe.execute()
        many.shards.discover(force=True)
        many.shards.join(list(many.shards.followed.values()))
        while many.poll():
            pass
        print(f"| 3-master cluster | {len(many.shards.followed)} "
              f"| {idle_cost(many, lambda: cluster_cpu(cluster), idle, masters)} |")
        # Live: the same entries produced at a steady rate while the consumer follows them.
        entries_with_device: list[tuple[bytes, dict[bytes, bytes], str]] = []
        device_of: dict[bytes, str] = {}
        for entry_id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], single.xrange(EVENTS)):
            if fields[b"k"] == b"decision":
                device_of[fields[b"id"]] = str(orjson.loads(fields[b"req"]).get("device_id", ""))
            entries_with_device.append((entry_id, fields, device_of.get(fields.get(b"id", b""), "")))
        print(f"\nlive: {len(entries_with_device)} entries produced at {rate}/s, the consumer following "
              "(Redis CPU with it minus without it)")
        print("| deployment | Redis CPU per entry | commands per entry | their time per entry | entries fed "
              "| done after the last entry |")
        print("|---|---|---|---|---|---|")
        sides: list[tuple[str, Any, Any, list[redis.Redis]]] = [
            ("one Redis", single, lambda: cpu(single), [single]),
            ("3-master cluster", client, lambda: cluster_cpu(cluster), masters)]
        for warm in (False, True):
            for run, (label, target, redis_cpu, nodes) in enumerate(sides):
                shards = "every shard there before" if warm else "shards appear during the run"
                cells = live_cost(target, entries_with_device, redis_cpu, rate, f"{run}:{warm}", nodes, warm)
                print(f"| {label}, {shards} | {cells} |")
        for node in masters:
            node.close()
        client.close()
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster", action="store_true",
                        help="The consumer on one Redis and on a 3-master cluster, side by side.")
    parser.add_argument("--idle", type=float, default=5.0, help="Seconds of idle polling measured (--cluster).")
    parser.add_argument("--rate", type=int, default=1000, help="Entries produced per second, live (--cluster).")
    parser.add_argument("--profiles", nargs="+", default=["default"], choices=["default", "hard", "mixed"],
                        help="Simulator profiles the consumer is measured on (one server).")
    parser.add_argument("--consumer-only", action="store_true", help="Skip the decision path's measurement.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.cluster:
        with tempfile.TemporaryDirectory() as tmp:
            cluster_side_by_side(args.users, args.seed, args.batch, args.idle, Path(tmp), args.rate)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            client = server.client()
            for profile in args.profiles:
                client.flushall()
                consumer_cost(client, args.users, args.seed, args.batch, profile)
            if not args.consumer_only:
                decision_cost(client, args.decisions, args.rounds)
        finally:
            server.kill()


if __name__ == "__main__":
    main()
