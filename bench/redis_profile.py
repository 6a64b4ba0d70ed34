"""Where Redis' CPU goes in a burst of native decisions: a ``perf`` profile of the server.

The same workload as ``bench/redis_cpu.py --native`` (busy devices whose
windows are full, a burst of realistic decisions through the service's Flask
app in this process), decided by the native module only. While the burst
runs, ``perf record`` samples the redis-server process with call stacks
(DWARF unwinding: the bundled binary has no frame pointers), kernel included.
The samples are sorted into the parts of a decision's cost:

- inside ``RISK.DECIDE``, split by what the module was doing (opening keys,
  which is mostly the keyspace's hash look-ups; writing strings; the share
  event; the refusal's evidence; replication of its writes; the rest);
- the protocol (parsing a command's arguments, dispatching it);
- the round trip (the socket read, the reply's write, the event loop's wait).

Several ``--concurrency`` values are measured round by round, alternating,
each from fresh devices: the threads of one worker meet in the store's group
commit, so more threads send more decisions per round trip.

    .venv/bin/python bench/redis_profile.py [--decisions 3000] [--devices 300]
        [--concurrency 8 32] [--rounds 2] [--keep DIR]

Needs Linux ``perf`` and the right to profile the server with its kernel
stacks (root, or ``kernel.perf_event_paranoid`` of -1), and the module built
(``make native``). The CPU figures come from ``INFO cpu`` as in
``bench/redis_cpu.py``; perf's own unwinding adds to them, so read the CPU
column as a ratio between the rows, and the parts as shares of the samples.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redis_cpu import ROOT, RedisNodes, measure_burst, run
from tuning import add_argument as add_tuning_argument
from tuning import tune

from riskservice.limits.clock import ManualClock
from riskservice.limits.native import built_module
from tests.redis_server import RedisServer

# The parts of the cost, tried in this order on each sample's stack:
# the first part with one of its frames on the stack names the sample.
INSIDE = ("decide", "with_effects")
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (part, any of these frames on the stack)
    ("decide: replication of its writes", ("effects_flush",)),
    ("decide: share event (XADD)", ("append_event",)),
    ("decide: opening keys (hash look-ups)", ("RM_OpenKey",)),
    ("decide: writing strings and expiries", ("write_held", "set_px_buf")),
    ("decide: refusal evidence (flags, queue)", ("hincrby", "RM_ZsetAdd", "RM_HashSet")),
    ("decide: the rest (rules, record, reply)", INSIDE),
    ("protocol: parsing arguments", ("processMultibulkBuffer", "processInlineBuffer")),
    ("protocol: dispatch", ("processCommand", "processInputBuffer")),
    ("round trip: socket read", ("readQueryFromClient",)),
    ("round trip: reply write", ("writeToClient", "handleClientsWithPendingWrites")),
    ("round trip: event loop wait", ("epoll_wait", "aeApiPoll")),
)


def perf_allowed() -> str | None:
    """Why perf cannot profile here (None: it can)."""
    if shutil.which("perf") is None:
        return "no `perf` on PATH (Debian: apt install linux-perf)"
    if os.geteuid() != 0:
        level = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
        if level > -1:
            return f"kernel.perf_event_paranoid is {level}: run as root, or set it to -1"
    return None


def stacks(data: Path) -> list[list[str]]:
    """Each sample's stack as function names, innermost first."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True, text=True,
                         check=True).stdout
    samples = []
    for block in out.split("\n\n"):
        names = []
        for line in block.strip().splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                names.append(parts[1].removesuffix(" (inlined)"))
        if names:
            samples.append(names)
    return samples


def part_of(names: list[str]) -> str:
    """The part of the cost a sample's stack is in (see ``PARTS``)."""
    frames = set(names)
    inside = any(n in frames for n in INSIDE)
    for part, anyof in PARTS:
        if part.startswith("decide") == inside and any(n in frames for n in anyof):
            return part
    return "other (timers, expiry, kernel)"


def profile_burst(app: Any, clock: ManualClock, nodes: RedisNodes, bodies: list[bytes], concurrency: int,
                  pid: int, data: Path) -> dict[str, Any]:
    """``measure_burst`` with ``perf record`` on the server meanwhile; the parts' shares of the samples."""
    perf = subprocess.Popen(["perf", "record", "-q", "--call-graph", "dwarf,16384", "-F", "2000", "-p", str(pid),
                             "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches
    try:
        result: dict[str, Any] = measure_burst(app, clock, nodes, bodies, concurrency)
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    samples = stacks(data)
    parts = Counter(part_of(s) for s in samples)
    return result | {"samples": len(samples), "parts": {p: n / len(samples) for p, n in parts.items()}}


def one_round(url: str, nodes: RedisNodes, pid: int, decisions: int, devices: int, concurrency: int,
              work: Path) -> dict[str, Any]:
    """``bench/redis_cpu.py``'s round on the native decide, its burst profiled."""
    result = run(url, nodes, decisions, devices, False, work, concurrency, native="on",
                 measure=partial(profile_burst, pid=pid, data=work / "perf.data"))
    assert result["commands"].get("risk.decide", {}).get("calls_per_decision", 0) >= 1, "not the native decide"
    return result


def report(args: argparse.Namespace, rounds: dict[int, list[dict[str, Any]]]) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Redis {rounds[args.concurrency[0]][0]['redis_version']} ({args.redis_settings})")
    print(f"{args.decisions} native decisions over {args.devices} busy devices, {args.rounds} round(s) per "
          f"concurrency, alternating; under perf (DWARF stacks, 2 kHz)\n")
    print("| threads | Redis CPU µs per decision, rounds | of which kernel | decisions per round trip | "
          "inside RISK.DECIDE, µs per call |")
    print("|---|---|---|---|---|")
    for c, results in rounds.items():
        cpu = ", ".join(f"{r['cpu_us_per_decision']:.1f}" for r in results)
        sys_cpu = ", ".join(f"{r['sys_cpu_us_per_decision']:.1f}" for r in results)
        batch = ", ".join(f"{args.decisions / r['round_trips']:.1f}" for r in results if r["round_trips"])
        inside = ", ".join(f"{r['commands']['risk.decide']['usec_per_call']:.1f}" for r in results)
        print(f"| {c} | {cpu} | {sys_cpu} | {batch} | {inside} |")
    names = sorted({p for results in rounds.values() for r in results for p in r["parts"]},
                   key=lambda p: (not p.startswith("decide"), p.startswith("other"), p))
    print("\nShare of the server's samples, mean over rounds:\n")
    print("| part | " + " | ".join(f"{c} threads" for c in rounds) + " |")
    print("|---|" + "---|" * len(rounds))
    for name in names:
        cells = [f"{100 * statistics.mean(r['parts'].get(name, 0.0) for r in results):.1f} %"
                 for results in rounds.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    samples = ", ".join(f"{c} threads: {sum(r['samples'] for r in results)}" for c, results in rounds.items())
    print(f"\nsamples: {samples}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32],
                        help="threads posting the burst through one app; each value every round, alternating")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep each round's perf.data under this folder")
    add_tuning_argument(parser)
    args = parser.parse_args()
    why = perf_allowed()
    if why:
        sys.exit(f"cannot profile: {why}")
    module = built_module()
    if module is None:
        sys.exit("no riskservice/limits/native/riskdecide.so: build it with `make native`")
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    server = RedisServer(work / "redis", modules=[module]).start()
    rounds: dict[int, list[dict[str, Any]]] = {c: [] for c in args.concurrency}
    try:
        nodes = RedisNodes(server.url, cluster=False)
        args.redis_settings = tune(nodes.clients, args.redis_defaults)
        assert server.pid is not None
        for i in range(args.rounds):
            order = args.concurrency if i % 2 == 0 else list(reversed(args.concurrency))
            for c in order:
                round_dir = work / f"round-{i}-{c}"
                rounds[c].append(one_round(server.url, nodes, server.pid, args.decisions, args.devices, c,
                                           round_dir))
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(round_dir / "perf.data", args.keep / f"round-{i}-{c}.perf.data")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(args, rounds)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
