"""The signal engine's own CPU per stream entry, against a baseline commit.

The consumer's CPU is the engine's (pure Python): it bounds how many
shares a second one consumer follows. This fills a scratch Redis's share
stream by replaying simulated workloads through the decision path (as
``bench/signals_redis.py`` does), reads the entries once, then feeds them to
the engine of ``--baseline`` (checked out into a temporary worktree) and of
the working tree, in alternating rounds, each in its own process; the best
round of each side is kept (the machine is shared and noisy). It also
checks that both engines make the same writes, in the same order: a speed
change must not change a signal.

    .venv/bin/python bench/signals_engine.py --baseline HEAD~1 [--users 10000] [--seed 1]
        [--profiles default hard mixed] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def capture(users: int, seed: int, profile: str, out: Path) -> int:
    """Replay a workload into a scratch Redis; pickle its stream entries' fields to ``out``."""
    from graphs.workload.simulate import simulate
    from riskservice.backtest import run_backtest
    from riskservice.limits.keys import EVENTS
    from riskservice.policy.load import load_policy
    from tests.redis_server import RedisServer

    events, _ = simulate(users, seed, profile)
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(Path(work)).start()
        try:
            run_backtest(events, load_policy(ROOT / "config" / "policy.yaml"), examples=0,
                         redis_url=server.url, signals=False)
            client = server.client()
            entries = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(EVENTS)]
            client.close()
        finally:
            server.stop()
    out.write_bytes(pickle.dumps(entries))
    return len(entries)


def feed(entries_file: str) -> dict[str, object]:
    """Run in a checkout (sys.path[0]): feed every entry once; CPU seconds, and a digest of the writes."""
    from riskservice.signals.engine import SignalEngine

    entries = pickle.loads(Path(entries_file).read_bytes())  # (our own file, just written)
    engine = SignalEngine()
    digest, writes = hashlib.sha256(), 0
    started = time.process_time()
    made = [engine.observe(fields) for fields in entries]
    cpu = time.process_time() - started
    for batch in made:
        for write in batch:
            digest.update(repr(tuple(write)).encode())
            writes += 1
    return {"cpu_s": cpu, "entries": len(entries), "writes": writes, "digest": digest.hexdigest()}


def run_in(checkout: Path, entries_file: Path) -> dict[str, object]:
    code = (f"import sys, json; sys.path.insert(0, {str(checkout)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r}); "
            f"import signals_engine as b; print(json.dumps(b.feed({str(entries_file)!r})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="git ref to compare with")
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profiles", nargs="+", default=["default", "hard", "mixed"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp()) / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline], cwd=ROOT, check=True)
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"best of {args.rounds} alternating rounds per side")
        print(f"\n| profile ({args.users} users, seed {args.seed}) | entries | baseline µs/entry | now µs/entry "
              "| ratio | same writes |")
        print("|---|---:|---:|---:|---:|---|")
        for profile in args.profiles:
            with tempfile.TemporaryDirectory() as work:
                entries_file = Path(work) / "entries.pickle"
                capture(args.users, args.seed, profile, entries_file)
                best: dict[str, float] = {}
                seen: dict[str, dict[str, object]] = {}
                for _ in range(args.rounds):
                    for side, checkout in (("baseline", base), ("now", ROOT)):
                        got = run_in(checkout, entries_file)
                        best[side] = min(best.get(side, float("inf")), float(got["cpu_s"]))  # type: ignore[arg-type]
                        seen[side] = got
            n = int(seen["now"]["entries"])  # type: ignore[call-overload]
            same = (seen["now"]["digest"], seen["now"]["writes"]) == (seen["baseline"]["digest"],
                                                                      seen["baseline"]["writes"])
            print(f"| {profile} | {n} | {best['baseline'] / n * 1e6:.0f} | {best['now'] / n * 1e6:.0f} "
                  f"| {best['now'] / best['baseline']:.2f} | {'yes' if same else 'NO'} ({seen['now']['writes']}) |")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


if __name__ == "__main__":
    # (Only when run: feed() is imported by a child process whose path starts
    # with the checkout it measures, which this must not shadow.)
    sys.path.insert(0, str(ROOT))
    main()
