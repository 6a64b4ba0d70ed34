"""Redis CPU per decision, for busy devices whose windows are full.

Fills N devices to the default policy's caps (50 shares in the last day, 20 of
them in the last 5 minutes, 5 users per device), then posts a burst of
realistic decisions (ip, geo, Chinese share copy, 1-4 recipients, channel,
merchant) through the service's Flask app in this process, no HTTP server.
Redis's CPU is ``used_cpu_sys + used_cpu_user`` from ``INFO cpu`` before and
after the burst; an idle period of the same wall time is measured afterwards
and subtracted (Redis's own timers run meanwhile). ``INFO commandstats``
deltas show which commands the time goes to.

    .venv/bin/python bench/redis_cpu.py [--decisions 3000] [--devices 300] [--rounds 3]
        [--url redis://...] [--cluster] [--native] [--floor] [--redis-defaults]
        [--ab-module SO] [--ab-defaults] [--ab-server BIN]

``--ab-server BIN`` compares two Redis servers the same way: A is a
redis-server of the binary BIN (say Redis 7.0), B the service's own (the
embedded 6.2); both run this tree's module under the recommended settings.

``--ab-module SO`` and ``--ab-defaults`` compare two arms of the native
decide in one run, round by round from the same snapshot, A first then B
first: A runs the module file SO (say a baseline commit's) or this tree's,
under Redis' defaults with ``--ab-defaults`` or else the recommended
settings; B runs this tree's module under the recommended settings. Arms
measured seconds apart share the machine's slow and quick minutes, which
separate runs (minutes apart) do not: it prints B / A per round and its
median.

Redis runs with the service's recommended settings (bench/tuning.py,
docs/operations.md "Your own Redis"); ``--redis-defaults`` leaves it at
Redis' own defaults.

``--floor`` (one server) also measures, in the same way, what a call that
judges nothing costs (``bench/floor.py``): the commands every decision must
make as a script with decide.lua's KEYS and ARGV, the same commands pipelined
without a script, a bare ``EVALSHA`` (``return 1``) and a ``PING``, each
sent one round trip at a time like the decisions.

``--native`` (with the native decide loaded: ``make native``; with
``--cluster`` on every master, where it is the device's slot's step)
measures decide.lua and the module (``RISK.DECIDE``) side by side on the
same workload: each round fills fresh devices once, snapshots the server
(``DUMP``), runs the burst through one path, restores the snapshot and the
clock, and runs the very same burst through the other; the order alternates
from round to round. It reports both and the ratio, module over Lua. With
``--floor`` too, decide.lua and the module are also measured one call at a
time on the floor's arguments (fresh devices).

The clock is injected (the windows' timestamps come from the bench, as in the
other benchmarks); in production the script reads Redis ``TIME`` instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from floor import floor_commands, floor_script  # noqa: E402  (bench/ is this script's folder)
from tuning import add_argument as add_tuning_argument  # noqa: E402
from tuning import tune  # noqa: E402

from config.settings import ENV_VARS, Settings  # noqa: E402
from riskservice.app import create_app  # noqa: E402
from riskservice.decisions.request import validate_decision_request  # noqa: E402
from riskservice.limits.clock import ManualClock  # noqa: E402
from riskservice.limits.keys import decision_keys  # noqa: E402
from riskservice.limits.native import COMMAND, NATIVE_VERSION, built_module, loaded_version  # noqa: E402
from riskservice.limits.scripts import DECIDE  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from tests.conftest import ISSUER_KEY  # noqa: E402
from tests.limits.args import decide_args  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

USERS_PER_DEVICE = 5
# Ordinary promotional copy (none of the policy's sensitive terms).
TEXTS = ("好友专享：满100减20，快来一起领券", "周末咖啡买一送一，约上朋友来店里坐坐",
         "新店开业，邀请你领取一张8折优惠券", "火锅套餐立减30元，今晚一起去吃吧",
         "会员日双倍积分，分享给你看看", "这家面包店的新品很好吃，送你一张券")
CHANNELS = ("chat", "group", "moments")


def openid(rng: random.Random) -> str:
    """A WeChat-style openid (28 characters)."""
    return "oX" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", k=26))


class Traffic:
    """Devices, their users and the shares they send (seeded, reproducible)."""

    def __init__(self, devices: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        run = uuid.uuid4().hex[:8]  # a fresh run never meets an earlier run's keys
        self.devices = [f"{run}{i:024x}" for i in range(devices)]
        self.users = {d: [openid(self.rng) for _ in range(USERS_PER_DEVICE)] for d in self.devices}
        self.ips = {d: f"{'203.0.113' if i % 2 else '198.51.100'}.{i % 250 + 1}" for i, d in enumerate(self.devices)}
        self.home = {d: (31.23 + self.rng.uniform(-0.1, 0.1), 121.47 + self.rng.uniform(-0.1, 0.1))
                     for d in self.devices}
        self.count = 0

    def share(self, device: str, user: str) -> dict[str, Any]:
        self.count += 1
        lat, lon = self.home[device]
        return {
            "event_id": f"{device[:8]}-{self.count}", "device_id": device, "user_id": user,
            "coupon_id": f"cp-{self.rng.randrange(40)}", "merchant_id": f"m-{self.rng.randrange(20)}",
            "channel": self.rng.choice(CHANNELS), "ip": self.ips[device],
            "geo": {"lat": round(lat + self.rng.uniform(-0.002, 0.002), 6),
                    "lon": round(lon + self.rng.uniform(-0.002, 0.002), 6)},
            "recipients": [openid(self.rng) for _ in range(self.rng.randint(1, 4))],
            "text": self.rng.choice(TEXTS),
        }


class RedisNodes:
    """The Redis processes whose CPU a decision costs: one server, or a cluster's masters."""

    def __init__(self, url: str, cluster: bool) -> None:
        seed = redis.Redis.from_url(url)
        if cluster:
            # Each entry of CLUSTER SLOTS: first, last, [host, port, id] of the master, replicas...
            masters = {(m[0].decode(), int(m[1])) for _, _, m, *_ in seed.execute_command("CLUSTER SLOTS")}
            self.clients = [redis.Redis(host=h, port=p) for h, p in sorted(masters)]
            seed.close()
        else:
            self.clients = [seed]

    def snapshot(self) -> dict[str, Any]:
        """CPU seconds (all threads, and the main thread) and commandstats, summed over the nodes."""
        cpu = main = sys_cpu = 0.0
        commands: Counter[str] = Counter()
        usec: Counter[str] = Counter()
        version = ""
        for c in self.clients:
            info = c.info("cpu")
            cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
            sys_cpu += float(info["used_cpu_sys"])
            main += float(info.get("used_cpu_sys_main_thread", 0)) + float(info.get("used_cpu_user_main_thread", 0))
            for name, stat in c.info("commandstats").items():
                # (lower case: a module's command is listed as it spelled it)
                commands[name.removeprefix("cmdstat_").lower()] += int(stat["calls"])
                usec[name.removeprefix("cmdstat_").lower()] += int(stat["usec"])
            version = str(c.info("server")["redis_version"])
        return {"cpu": cpu, "main": main, "sys": sys_cpu, "calls": commands, "usec": usec, "version": version,
                "nodes": len(self.clients)}


def summary(before: dict[str, Any], after: dict[str, Any], idle: dict[str, Any], decisions: int, wall: float,
            answers: Counter[str]) -> dict[str, Any]:
    """Per-decision CPU (raw and net of idle) and the commands' calls and time per decision."""
    busy = after["cpu"] - before["cpu"]
    background = idle["cpu"] - after["cpu"]
    commands = {}
    # INFO itself is the bench's, not the service's.
    for name in sorted(after["calls"], key=lambda n: -(after["usec"][n] - before["usec"][n])):
        calls = after["calls"][name] - before["calls"][name]
        if calls and name != "info":
            usec = after["usec"][name] - before["usec"][name]
            commands[name] = {"calls_per_decision": round(calls / decisions, 3),
                              "usec_per_call": round(usec / calls, 2),
                              "usec_per_decision": round(usec / decisions, 2)}
    return {"decisions": decisions, "wall_s": round(wall, 2), "redis_version": after["version"],
            "masters": after["nodes"],
            "cpu_us_per_decision": round(busy / decisions * 1e6, 1),
            "sys_cpu_us_per_decision": round((after["sys"] - before["sys"]) / decisions * 1e6, 1),
            "main_thread_cpu_us_per_decision": round((after["main"] - before["main"]) / decisions * 1e6, 1),
            "idle_cpu_us_total": round(background * 1e6, 1),
            "net_cpu_us_per_decision": round((busy - background) / decisions * 1e6, 1),
            "commands": commands, "answers": answers}


def cpu_table(result: dict[str, Any]) -> str:
    lines = ["| Redis CPU per decision | µs |", "|---|---|",
             f"| used_cpu_sys + used_cpu_user, burst / decisions | {result['cpu_us_per_decision']} |",
             f"| of which used_cpu_sys (kernel: sockets) | {result['sys_cpu_us_per_decision']} |",
             f"| the same, main thread only | {result['main_thread_cpu_us_per_decision']} |",
             f"| net of an idle period as long as the burst | {result['net_cpu_us_per_decision']} |", "",
             # Redis counts the commands a script runs too, and their time is inside the script's.
             "| command (scripts' inner commands included; their time is also in evalsha's) "
             "| calls per decision | µs per call | µs per decision |",
             "|---|---|---|---|"]
    for name, c in result["commands"].items():
        lines.append(f"| {name} | {c['calls_per_decision']} | {c['usec_per_call']} | {c['usec_per_decision']} |")
    return "\n".join(lines)


# Pre-fill schedule (seconds between rounds over all devices): up to 30 shares
# spread over the day, then 20 in the last 5 minutes, as in bench/redis_memory.py.
PREFILL_STEPS = [2800.0] * 30 + [400.0] + [10.0] * 19
EARLIER = 30


def build_settings(url: str, data_dir: Path, cluster: bool, native: str = "off") -> Settings:
    """The bench's settings; decisions on decide.lua unless ``native`` says otherwise."""
    env = {"REDIS_URL": url, "RISK_API_KEYS": f"issuer:{ISSUER_KEY}", "RISK_DATA_DIR": str(data_dir),
           "RISK_REDIS_NATIVE": native, "RISK_POLICY_POLL_S": "0", "RISK_LOG_LEVEL": "WARNING",
           # In-process on a shared 2-core machine: room for a slow moment, no degraded answers.
           "RISK_REDIS_BUDGET_MS": "2000"}
    if cluster:
        env["RISK_REDIS_CLUSTER"] = "1"
    return Settings.from_env(env)


def post_all(app: Any, clock: ManualClock, bodies: list[bytes], concurrency: int) -> Counter[str]:
    """Post ``bodies`` to the app from ``concurrency`` threads (one: in order), tallying the answers.

    Threads share the app, and so its store: as the threads of one worker do,
    whose calls meet in the store's group commit.
    """
    headers = {"Authorization": f"Bearer {ISSUER_KEY}", "Content-Type": "application/json"}
    tallies: list[Counter[str]] = []

    def post(part: list[bytes]) -> None:
        client = app.test_client()
        outcomes: Counter[str] = Counter()
        tallies.append(outcomes)
        for body in part:
            clock.advance(0.02)  # 50 decisions a second of simulated time
            resp = client.post("/v1/decisions", data=body, headers=headers)
            answer = resp.get_json()
            outcomes[f"{answer['decision']}{' (degraded)' if answer.get('degraded') else ''}"
                     if resp.status_code == 200 else str(resp.status_code)] += 1

    threads = [threading.Thread(target=post, args=(bodies[i::concurrency],)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(tallies, Counter())


def prefill(app: Any, clock: ManualClock, traffic: Traffic) -> Counter[str]:
    """Fill every device's windows through ``app``: its 5-minute window is full
    (20), its day holds 20 to 50 shares."""
    engine = app.extensions["risk"].engine
    # Every device's 5-minute window is full (20); its day holds 20 to 50 shares.
    prefill: Counter[str] = Counter()
    earlier = {d: traffic.rng.randint(0, EARLIER) for d in traffic.devices}
    for step, gap in enumerate(PREFILL_STEPS):
        clock.advance(gap)
        for d in traffic.devices:
            if step < EARLIER and step < EARLIER - earlier[d]:
                continue
            body = traffic.share(d, traffic.users[d][step % USERS_PER_DEVICE])
            prefill[engine.decide(validate_decision_request(body), body).decision] += 1
    return prefill


def burst_bodies(traffic: Traffic, decisions: int) -> list[bytes]:
    bodies = []
    for i in range(decisions):
        d = traffic.devices[i % len(traffic.devices)]
        bodies.append(orjson.dumps(traffic.share(d, traffic.users[d][traffic.rng.randrange(USERS_PER_DEVICE)])))
    return bodies


def run(url: str, nodes: RedisNodes, decisions: int, devices: int, cluster: bool, work: Path,
        concurrency: int = 1, native: str = "off", measure: Callable[..., dict[str, Any]] | None = None
        ) -> dict[str, Any]:
    """One round: fresh busy devices filled, then the burst measured by
    ``measure`` (:func:`measure_burst`'s arguments; by default it)."""
    traffic = Traffic(devices)
    clock = ManualClock(int(time.time() * 1000) - round(sum(PREFILL_STEPS) * 1000) - 60_000)
    app = create_app(build_settings(url, work / "var", cluster, native), clock=clock)
    try:
        filled = prefill(app, clock, traffic)
        result = (measure or measure_burst)(app, clock, nodes, burst_bodies(traffic, decisions), concurrency)
    finally:
        app.extensions["risk"].store.close()
    return result | {"prefill": filled}


def measure_burst(app: Any, clock: ManualClock, nodes: RedisNodes, bodies: list[bytes],
                  concurrency: int) -> dict[str, Any]:
    """Post ``bodies`` through ``app`` and measure Redis's CPU (net of an idle period as long)."""
    decisions = len(bodies)
    store = app.extensions["risk"].store
    commit = getattr(store, "_commit", None)  # the group commit's round trips
    trips_before = 0 if commit is None else commit.batches
    before = nodes.snapshot()
    started = time.perf_counter()
    outcomes = post_all(app, clock, bodies, concurrency)
    settles = getattr(store, "flush", None)  # Redis Cluster: the settles the burst sent are its work too
    if settles is not None:
        settles()
    wall = time.perf_counter() - started
    after = nodes.snapshot()
    time.sleep(wall)  # an idle period as long as the burst: Redis's own background CPU
    idle = nodes.snapshot()
    trips = None if commit is None else commit.batches - trips_before
    return summary(before, after, idle, decisions, wall, outcomes) | {"round_trips": trips}


def snapshot(client: redis.Redis) -> list[tuple[bytes, int, bytes]]:
    """Every key's ``DUMP`` and time to live (ms, 0: none)."""
    keys = client.keys("*")
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
        pipe.dump(key)
    replies = pipe.execute()
    return [(key, max(0, int(ttl)), value) for key, ttl, value in zip(keys, replies[::2], replies[1::2], strict=True)]


def restore(client: redis.Redis, keys: list[tuple[bytes, int, bytes]]) -> None:
    """The server as :func:`snapshot` saw it (only those keys; scripts stay loaded)."""
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for key, ttl, value in keys:
        pipe.restore(key, ttl, value)
    pipe.execute()


def run_native_pair(url: str, nodes: RedisNodes, decisions: int, devices: int, work: Path, concurrency: int,
                    lua_first: bool, cluster: bool = False) -> dict[str, dict[str, Any]]:
    """One round of ``--native``: the same busy devices and the same burst,
    once through decide.lua and once through the module (``lua_first``: in
    that order), from the same server state and the same clock."""
    traffic = Traffic(devices)
    clock = ManualClock(int(time.time() * 1000) - round(sum(PREFILL_STEPS) * 1000) - 60_000)
    apps = {"lua": create_app(build_settings(url, work / "var-lua", cluster, "off"), clock=clock),
            "native": create_app(build_settings(url, work / "var-native", cluster, "on"), clock=clock)}
    filled = prefill(apps["lua"], clock, traffic)
    if cluster:
        apps["lua"].extensions["risk"].store.flush()  # the pre-fill's settles, before the snapshot
    bodies = burst_bodies(traffic, decisions)
    states, start_ms = [snapshot(c) for c in nodes.clients], clock.now_ms()
    out = {}
    for i, path in enumerate(("lua", "native") if lua_first else ("native", "lua")):
        if i:
            for c, state in zip(nodes.clients, states, strict=True):
                restore(c, state)
            clock.set(start_ms)
        out[path] = measure_burst(apps[path], clock, nodes, bodies, concurrency) | {"prefill": filled}
        calls = out[path]["commands"].get(COMMAND.lower() if path == "native" else "evalsha", {})
        assert calls.get("calls_per_decision", 0) >= 1, f"{path}: the burst did not go through {path}"
    for app in apps.values():
        app.extensions["risk"].store.close()
    return out


class Pinning(NamedTuple):
    """CPU affinity for ``--ab-pin``: the Redis server's threads on ``redis``, this process's on ``client``."""

    redis_pid: int
    redis: frozenset[int]
    client: frozenset[int]


class Arm(NamedTuple):
    """One arm of an A/B run: the module file, the Redis settings it runs under, and its server."""

    module: Path
    settings: dict[str, str]
    url: str
    nodes: RedisNodes
    label: str = ""  # what the report calls its server
    pinned: Pinning | None = None  # where Redis and the client run during the arm's burst (None: anywhere)


def set_affinity(pid: int, cpus: Iterable[int]) -> None:
    """Every thread of process ``pid`` (Redis' background threads, the group commit's) onto ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), set(cpus))


def pin(redis_pid: int, pinned: Pinning | None) -> None:
    """Place the server and this process as ``pinned`` says, or anywhere (None). Threads started
    later, such as a burst's posting threads, inherit the main thread's affinity."""
    everywhere = range(os.cpu_count() or 1)
    set_affinity(redis_pid, pinned.redis if pinned else everywhere)
    set_affinity(os.getpid(), pinned.client if pinned else everywhere)


def run_ab_pair(decisions: int, devices: int, work: Path, concurrency: int, arms: dict[str, Arm],
                first: str) -> dict[str, dict[str, Any]]:
    """One round of ``--ab-module``/``--ab-defaults``/``--ab-server``: the same busy devices and
    the same burst through the native decide twice, from the same server state and clock, once
    per arm (a module file and the Redis settings it runs under, on one server; or two
    servers), ``first`` first. Two arms measured seconds apart, round after round, see the same
    slow or quick minutes of a shared machine, which separate runs do not.

    The devices are filled on B's server and copied to A's with ``DUMP``/``RESTORE`` (a newer
    Redis restores an older one's dumps, not the reverse: B is the older server)."""
    traffic = Traffic(devices)
    clock = ManualClock(int(time.time() * 1000) - round(sum(PREFILL_STEPS) * 1000) - 60_000)
    apps = {url: create_app(build_settings(url, work / f"var-{i}", False, "on"), clock=clock)
            for i, url in enumerate(dict.fromkeys(arm.url for arm in arms.values()))}
    filled = prefill(apps[arms["B"].url], clock, traffic)
    bodies = burst_bodies(traffic, decisions)
    states, start_ms = snapshot(arms["B"].nodes.clients[0]), clock.now_ms()
    one_server = len(apps) == 1
    pinning = next((a.pinned for a in arms.values() if a.pinned), None)
    out = {}
    for name in sorted(arms, key=lambda n: n != first):
        arm = arms[name]
        client = arm.nodes.clients[0]
        if one_server:  # (two servers loaded their arm's module at start)
            client.execute_command("MODULE", "UNLOAD", "riskdecide")
            client.execute_command("MODULE", "LOAD", str(arm.module))
        for key, value in arm.settings.items():
            client.config_set(key, value)
        restore(client, states)  # (after the settings: a restored set is encoded by them)
        clock.set(start_ms)
        if pinning is not None:
            pin(pinning.redis_pid, arm.pinned)
        out[name] = measure_burst(apps[arm.url], clock, arm.nodes, bodies, concurrency) | {"prefill": filled}
        calls = out[name]["commands"].get(COMMAND.lower(), {})
        assert calls.get("calls_per_decision", 0) >= 1, f"{name}: the burst did not go through the module"
    if pinning is not None:  # (the next round's fill runs anywhere)
        pin(pinning.redis_pid, None)
    for app in apps.values():
        app.extensions["risk"].store.close()
    return out


def print_pairs(pairs: list[dict[str, dict[str, Any]]], first: str, second: str, labels: tuple[str, str]) -> None:
    """Per round, the two arms' net µs per decision (``first`` measured first in odd rounds), their
    ratio ``second`` / ``first``, and the medians and the ratio's geometric mean: the arm that runs
    second in a round runs on restored keys, and the alternating order cancels that in the mean."""
    def net(pair: dict[str, dict[str, Any]], arm: str) -> float:
        return float(pair[arm]["net_cpu_us_per_decision"])

    ratios = [net(p, second) / net(p, first) for p in pairs]
    print(f"| round | first | {labels[0]} net µs/decision | {labels[1]} net µs/decision | ratio | answers equal |\n"
          "|---|---|---|---|---|---|")
    for i, pair in enumerate(pairs):
        same = pair[first]["answers"] == pair[second]["answers"]
        print(f"| {i + 1} | {first if i % 2 == 0 else second} | {net(pair, first)} | {net(pair, second)} | "
              f"{ratios[i]:.3f} | {'yes' if same else 'NO'} |")
    print(f"\nmedian: {labels[0]} {statistics.median(net(p, first) for p in pairs):.1f} µs, "
          f"{labels[1]} {statistics.median(net(p, second) for p in pairs):.1f} µs; ratio {labels[1]} / {labels[0]}: "
          f"median {statistics.median(ratios):.3f}, geometric mean {statistics.geometric_mean(ratios):.3f}")
    trips = {arm: [p[arm]["round_trips"] for p in pairs if p[arm].get("round_trips")] for arm in (first, second)}
    if all(trips.values()):
        print(f"round trips per burst (median): {labels[0]} {statistics.median(trips[first]):.0f}, "
              f"{labels[1]} {statistics.median(trips[second]):.0f}")
    print()


def report_ab(args: argparse.Namespace, arms: dict[str, Arm], pairs: list[dict[str, dict[str, Any]]]) -> None:
    """Both arms per round and their ratio (B over A)."""
    versions = {pairs[0][name]["redis_version"] for name in arms}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Redis {' and '.join(sorted(versions))} "
          f"({'one server' if len({arm.url for arm in arms.values()}) == 1 else 'one server per arm'})")
    for name, arm in arms.items():
        where = (f", Redis on CPU {sorted(arm.pinned.redis)} and the client on {sorted(arm.pinned.client)}"
                 if arm.pinned else "")
        print(f"arm {name}: Redis {pairs[0][name]['redis_version']}{arm.label}, {arm.module}, "
              + ", ".join(f"{k} {v}" for k, v in arm.settings.items()) + where)
    print(f"{args.decisions} decisions over {args.devices} devices with full windows, {args.concurrency[0]} "
          f"thread(s); each round: the same devices and burst through both arms, from the same snapshot\n")
    print_pairs(pairs, "A", "B", ("A", "B"))


def floor_cpu(url: str, nodes: RedisNodes, calls: int, native: bool = False) -> dict[str, dict[str, float]]:
    """Redis CPU per call (µs, and the kernel's part) of calls that judge nothing (``bench/floor.py``);
    with ``native``, decide.lua and the module too, on the same arguments."""
    client = redis.Redis.from_url(url)
    plan = load_policy(str(ROOT / "config/policy.yaml")).default.plan
    now = int(time.time() * 1000)
    state = bytes(320)  # a busy device's state: about 50 shares of 6 bytes

    def call_args(i: int, path: str) -> tuple[Any, list[bytes | str]]:
        device = f"floor-{path}-{i % 300}"
        keys = decision_keys(uuid.uuid4().hex, device, f"u-{device}", "203.0.113.7")
        argv = decide_args(now=now, decision_id=uuid.uuid4().hex, user_id=f"u-{device}", device_id=device,
                           plan=plan, lat="31.2", lon="121.4", request=b"x" * 400)
        return keys, list(argv.wire())

    def measure(one: Any, path: str, busy: bool = True) -> dict[str, float]:
        prepared = [call_args(i, path) for i in range(calls)]
        for keys, _ in prepared[:300] if busy else ():
            client.set(keys.device_state, state)
        before = nodes.snapshot()
        for keys, argv in prepared:
            one(keys, argv)
        after = nodes.snapshot()
        return {"us": round((after["cpu"] - before["cpu"]) / calls * 1e6, 1),
                "sys_us": round((after["sys"] - before["sys"]) / calls * 1e6, 1)}

    out: dict[str, dict[str, float]] = {}
    for path in ("refused", "allowed"):
        sha = client.script_load(floor_script(path))
        out[f"script, {path}"] = measure(lambda k, a, sha=sha: client.evalsha(sha, len(k), *k, *a), path)

        def pipelined(k: Any, a: list[bytes | str], path: str = path) -> None:
            pipe = client.pipeline(transaction=False)
            for command in floor_commands(path, k, a):
                pipe.execute_command(*command)
            pipe.execute()

        out[f"pipelined, {path}"] = measure(pipelined, path)
    if native:
        client.script_load(DECIDE.source)
        # Real decisions (their state is not the floor's stand-in bytes): 300
        # devices from empty windows, each decided calls/300 times.
        out["decide.lua, from empty windows"] = measure(
            lambda k, a: client.evalsha(DECIDE.sha, len(k), *k, *a), "fresh-lua", busy=False)
        out[f"{COMMAND} (the module), from empty windows"] = measure(
            lambda k, a: client.execute_command(COMMAND, len(k), *k, *a), "fresh-native", busy=False)
    bare = client.script_load("return 1")
    out["bare EVALSHA"] = measure(lambda k, a: client.evalsha(bare, 0), "refused")
    out["PING"] = measure(lambda k, a: client.ping(), "refused")
    client.close()
    return out


def print_floors(floors: dict[str, dict[str, float]], calls: int) -> None:
    print(f"\nthe floor ({calls} calls each, one round trip at a time; µs of Redis CPU per call):\n")
    print("| call | µs | of which kernel |\n|---|---|---|")
    for name, f in floors.items():
        print(f"| {name} | {f['us']} | {f['sys_us']} |")


def shape_of(result: dict[str, Any], cluster: bool) -> str:
    return f"cluster of {result['masters']} masters" if cluster else "one server"


def report_native(args: argparse.Namespace, pairs: list[dict[str, dict[str, Any]]],
                  floors: dict[str, dict[str, float]] | None) -> None:
    """Both paths per round, their ratio, and the tables of the median round (by ratio)."""
    def net(pair: dict[str, dict[str, Any]], path: str) -> float:
        return float(pair[path]["net_cpu_us_per_decision"])

    ratios = [net(p, "native") / net(p, "lua") for p in pairs]
    order = sorted(range(len(pairs)), key=lambda i: ratios[i])
    median = pairs[order[len(order) // 2]]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Redis {median['lua']['redis_version']} ({shape_of(median['lua'], args.cluster)}, riskdecide "
          f"{NATIVE_VERSION} loaded; {args.redis_settings})")
    print(f"{args.decisions} decisions over {args.devices} devices with full windows ({USERS_PER_DEVICE} users "
          f"each), {args.concurrency[0]} thread(s); each round: the same devices and burst through both paths, "
          f"from the same snapshot; pre-fill answers: {dict(median['lua']['prefill'])}\n")
    print_pairs(pairs, "lua", "native", ("decide.lua", "RISK.DECIDE"))
    for path in ("lua", "native"):
        print(f"the round of the median ratio, through {'decide.lua' if path == 'lua' else 'RISK.DECIDE'} "
              f"(answers {dict(median[path]['answers'])}):\n")
        print(cpu_table(median[path]) + "\n")
    if floors:
        print_floors(floors, args.decisions)
    print(orjson.dumps({path: median[path] | {"answers": dict(median[path]["answers"]),
                                              "prefill": dict(median[path]["prefill"])}
                        for path in ("lua", "native")} | {"ratios": [round(r, 3) for r in ratios]}).decode())


def ab(args: argparse.Namespace) -> None:
    """``--ab-module``, ``--ab-defaults``, ``--ab-server``, ``--ab-pin``: two arms of the native decide, by round."""
    from riskservice.embedded_redis import REDIS_TUNING

    module = built_module()
    if module is None:
        sys.exit("no riskservice/limits/native/riskdecide.so: build it with `make native`")
    defaults = {"zset-max-ziplist-entries": "128"}  # (Redis' own, for each setting REDIS_TUNING changes)
    assert defaults.keys() == REDIS_TUNING.keys()
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-ab-"))
    servers = [RedisServer(work / "redis", modules=[module]).start()]
    try:
        home = RedisNodes(servers[0].url, cluster=False)
        arms = {"A": Arm(args.ab_module or module, defaults if args.ab_defaults else REDIS_TUNING,
                         servers[0].url, home),
                "B": Arm(module, REDIS_TUNING, servers[0].url, home)}
        if args.ab_server:
            servers.append(RedisServer(work / "redis-a", modules=[module], binary=str(args.ab_server)).start())
            arms["A"] = arms["A"]._replace(url=servers[1].url, nodes=RedisNodes(servers[1].url, cluster=False),
                                           label=f" ({args.ab_server})")
        if args.ab_pin:
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) < 2 or servers[0].pid is None:
                sys.exit("--ab-pin: needs two CPUs or more")
            arms["B"] = arms["B"]._replace(pinned=Pinning(servers[0].pid, frozenset(cpus[:1]),
                                                          frozenset(cpus[1:])))
        pairs = [run_ab_pair(args.decisions, args.devices, work / f"round-{i}", args.concurrency[0], arms,
                             first="A" if i % 2 == 0 else "B")
                 for i in range(args.rounds)]
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report_ab(args, arms, pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat with fresh devices and report the median round (the machine is shared)")
    parser.add_argument("--url", help="use this Redis (a cluster node with --cluster) instead of starting one")
    parser.add_argument("--cluster", action="store_true",
                        help="Redis Cluster: the service with RISK_REDIS_CLUSTER=1, CPU summed over the masters")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1],
                        help="threads posting the burst through one app (a worker's threads); several values "
                             "are measured side by side, round by round")
    parser.add_argument("--floor", action="store_true",
                        help="also measure calls that judge nothing (bench/floor.py), one server only")
    parser.add_argument("--native", action="store_true",
                        help="decide.lua and the native decide (RISK.DECIDE) side by side, round by round, on the "
                             "same devices and burst; one server with the module (make native)")
    parser.add_argument("--ab-module", type=Path, metavar="SO",
                        help="A/B in one run: each round, the same burst through this module file (A) and "
                             "through this tree's (B), on one server (e.g. a baseline commit's riskdecide.so)")
    parser.add_argument("--ab-server", type=Path, metavar="BIN",
                        help="A/B in one run: A on a server of this redis-server binary (a newer Redis: "
                             "the devices are filled on B's and copied), B on the service's own; "
                             "this tree's module on both")
    parser.add_argument("--ab-defaults", action="store_true",
                        help="A/B in one run: A under Redis' default settings, B under the recommended ones")
    parser.add_argument("--ab-pin", action="store_true",
                        help="A/B in one run: A with Redis and the client free to run on any CPU, B with "
                             "Redis on the first CPU and the client on the others (as a Redis on its own "
                             "host or cores runs)")
    add_tuning_argument(parser)
    args = parser.parse_args()
    if args.ab_module or args.ab_defaults or args.ab_server or args.ab_pin:
        ab(args)
        return
    modules = []
    if args.native and args.url is None:
        module = built_module()
        if module is None:
            sys.exit("--native: no riskservice/limits/native/riskdecide.so: build it with `make native`")
        modules = [module]
    if args.cluster and "RISK_REDIS_CLUSTER" not in ENV_VARS:
        sys.exit("--cluster: the service does not support Redis Cluster yet (no RISK_REDIS_CLUSTER setting)")
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    server: Any = None
    try:
        url = args.url
        if url is None and args.cluster:
            from tests.cluster_server import RedisClusterServer

            server = RedisClusterServer(work / "cluster").start()
            url = server.url
        elif url is None:
            server = RedisServer(work / "redis", modules=modules).start()
            url = server.url
        nodes = RedisNodes(url, cluster=args.cluster)
        args.redis_settings = tune(nodes.clients, args.redis_defaults)
        if args.native:
            for c in nodes.clients:
                if server is not None and args.cluster:
                    c.execute_command("MODULE", "LOAD", str(modules[0]))
                if loaded_version(c.execute_command("MODULE", "LIST")) != NATIVE_VERSION:
                    sys.exit(f"--native: a Redis of {url} has no riskdecide module at version {NATIVE_VERSION}")
            pairs = [run_native_pair(url, nodes, args.decisions, args.devices, work / f"round-{i}",
                                     args.concurrency[0], lua_first=i % 2 == 0, cluster=args.cluster)
                     for i in range(args.rounds)]
            floors = floor_cpu(url, nodes, args.decisions, native=True) if args.floor and not args.cluster else None
            report_native(args, pairs, floors)
            return
        by_concurrency: dict[int, list[dict[str, Any]]] = {c: [] for c in args.concurrency}
        for i in range(args.rounds):
            for c in args.concurrency:
                by_concurrency[c].append(run(url, nodes, args.decisions, args.devices, args.cluster,
                                             work / f"round-{i}-{c}", concurrency=c))
        floors = floor_cpu(url, nodes, args.decisions) if args.floor and not args.cluster else None
        medians = {}
        for c, results in by_concurrency.items():
            results.sort(key=lambda r: r["net_cpu_us_per_decision"])
            medians[c] = results[len(results) // 2] | {
                "rounds_net_cpu_us_per_decision": [r["net_cpu_us_per_decision"] for r in results]}
        result = medians[args.concurrency[0]]
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    shape = shape_of(result, args.cluster)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Redis {result['redis_version']} ({shape}; {args.redis_settings})")
    print(f"{args.decisions} decisions over {args.devices} devices with full windows "
          f"({USERS_PER_DEVICE} users each), in {result['wall_s']:.1f} s;\n"
          f"pre-fill answers: {dict(result['prefill'])}; measured answers: {dict(result['answers'])}\n")
    for c, med in medians.items():
        trips = (f", {med['round_trips'] / args.decisions:.2f} round trips per decision (one per server and batch, "
                 f"settles included)") if med["round_trips"] else ""
        print(f"{c} thread(s): net µs per decision, every round (sorted): "
              f"{med['rounds_net_cpu_us_per_decision']}{trips}; the median round:\n")
        print(cpu_table(med) + "\n")
    if floors:
        print_floors(floors, args.decisions)
    print(orjson.dumps(result | {"answers": dict(result["answers"]), "prefill": dict(result["prefill"])}).decode())


if __name__ == "__main__":
    try:
        main()
    except redis.RedisError as exc:
        sys.exit(f"redis error: {exc}")
