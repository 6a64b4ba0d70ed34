"""Where a decision script's instructions go: decide.lua cut at its sections.

Each variant of ``decide.lua`` returns early at one section boundary (the
script built as the service builds it, ``limits/scripts.py``); every variant
runs ``--calls`` decisions against a redis-server under valgrind's callgrind,
and the instructions per call of each variant minus the one before it are
what that section adds. Two paths:

- ``refused``: a busy device whose windows are full (50 shares in the day,
  20 in the last 5 minutes, 5 users), so the count rules fire and the share
  is refused;
- ``allowed``: a device with 30 shares in the day and none in 5 minutes, its
  state written back before each call (so every call admits a share; those
  two ``SET`` calls from outside the script are in every figure alike).

    .venv/bin/python bench/redis_segments.py [--calls 100]

A section's figure includes the garbage collection its allocations cause, so
the figures are for comparing sections, not exact attributions.

``--floor`` also measures what no decision script can go below: the same
KEYS and ARGV, and only the commands a decision must make (the replay
check, the device state and user log read, the record and the share event
written; on the refused path one refusal count and the queue, on the allowed
path the state and log written back), with no rule judged. And the same
commands sent as plain pipelined commands, without a script: roughly what
judging outside Lua (a Redis module) would start from. Needs valgrind
(Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callgrind import instructions_while, start_server  # noqa: E402  (bench/ is this script's folder)
from floor import floor_commands, floor_script  # noqa: E402  (bench/ is this script's folder)

from riskservice.embedded_redis import find_redis_server  # noqa: E402
from riskservice.limits.keys import DecisionKeys, decision_keys  # noqa: E402
from riskservice.limits.scripts import DECIDE  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from tests.limits.args import decide_args  # noqa: E402

NOW = 1_800_000_000_000
# (text that starts a section of decide.lua, the name of what comes before it)
SECTIONS = [
    ("local now, late, now_s", "EVALSHA, KEYS/ARGV, the prelude"),
    ("local fingerprint, decision_id", "the clock (TIME when no time is given)"),
    ("local plan = read_plan", "the idempotency check (GET)"),
    ("local split = a_user_side", "the plan, fire()"),
    ("-- Count windows (rules 1-4)", "device state and user log (GETs)"),
    ("-- Success rate over", "the count windows (rules 1-4)"),
    ("-- Impossible travel", "the success rate (GET)"),
    ("-- Graph scores of the device", "the position (SET ... GET) and travel"),
    ("-- BEGIN real-time signals (issue 10): rules", "graph scores (HMGET)"),
    ("-- Bans (rules 8-10)", "real-time signals (EXISTS)"),
    ("-- Severity: block", "bans and allowlist (EXISTS)"),
    ("local consumed = 0", "severity"),
    ("-- Window counts after this", "admit (2 SETs) / refusal evidence (flags, queue)"),
    ("local findings = #fired", "window counts packed"),
    ("-- The record: the caller", "findings packed"),
    ("redis.call('SET', k_event", "the record built"),
    ("local codes = {}", "the record SET"),
]


def variants() -> list[tuple[str, str]]:
    """(name of the last section, script cut after it), in order; the last one is the whole script."""
    src = DECIDE.source
    out = []
    for pattern, name in SECTIONS:
        at = src.index(pattern)
        out.append((name, src[:at] + "do return 'cut' end\n" + src[at:]))
    out.append(("the share event (XADD), the reply", src))
    return out


def packed_log(times: list[int]) -> bytes:
    return b"".join(struct.pack(">Q", t)[2:] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--floor", action="store_true",
                        help="also measure the commands a decision must make, with no rule judged")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    server, client, out = start_server(work, find_redis_server())
    plan = load_policy(str(ROOT / "config/policy.yaml")).default.plan
    users = b"".join(struct.pack(">Q", NOW - 1000 * (i + 1))[2:] + struct.pack(">H", 2) + f"u{i}".encode()
                     for i in range(5))
    full = packed_log([NOW - 80_000_000 + i * 1_000_000 for i in range(30)]
                      + [NOW - 250_000 + i * 10_000 for i in range(20)])
    quiet = packed_log([NOW - 80_000_000 + i * 1_000_000 for i in range(30)])
    calls = 0

    def prepare(path: str) -> tuple[DecisionKeys, list[bytes | str]]:
        """The next call's keys and arguments (the allowed path's device reset first)."""
        nonlocal calls
        calls += 1
        device = f"dev-{path}"
        if path == "allowed":
            client.set(f"risk:{{d:{device}}}:state", struct.pack(">H", 30) + quiet + users)
            client.set("risk:{u:u-allowed}:log", quiet)
        keys = decision_keys(f"e{calls}", device, f"u-{path}", "203.0.113.7")
        argv = decide_args(now=NOW, decision_id=f"{calls:032x}", user_id=f"u-{path}", device_id=device, plan=plan,
                           lat="31.2", lon="121.4", request=b"x" * 400)
        return keys, list(argv.wire())

    def decide(sha: str, path: str) -> None:
        keys, argv = prepare(path)
        client.evalsha(sha, len(keys), *keys, *argv)

    def pipelined(path: str) -> None:
        """The floor's commands sent as plain commands in one pipeline, no script."""
        keys, argv = prepare(path)
        pipe = client.pipeline(transaction=False)
        for command in floor_commands(path, keys, argv):
            pipe.execute_command(*command)
        pipe.execute()

    def count(script: str | None, path: str) -> float:
        if script is None:
            def one() -> None:
                pipelined(path)
        else:
            sha = client.script_load(script)

            def one() -> None:
                decide(sha, path)
        one()

        def run() -> None:
            for _ in range(args.calls):
                one()

        return instructions_while(server.pid, out, run) / args.calls

    try:
        client.set("risk:{d:dev-refused}:state", struct.pack(">H", 50) + full + users)
        client.set("risk:{u:u-refused}:log", full)
        figures = {path: [count(script, path) for _, script in variants()] for path in ("refused", "allowed")}
        print(f"k instructions per call, added by each section ({args.calls} calls each)")
        print(f"{'section':52s} {'refused':>9s} {'allowed':>9s}")
        before = {"refused": 0.0, "allowed": 0.0}
        for i, (name, _) in enumerate(variants()):
            row = [figures[p][i] - before[p] for p in ("refused", "allowed")]
            before = {p: figures[p][i] for p in ("refused", "allowed")}
            print(f"{name:52s} {row[0] / 1000:9.1f} {row[1] / 1000:9.1f}")
        print(f"{'total':52s} {figures['refused'][-1] / 1000:9.1f} {figures['allowed'][-1] / 1000:9.1f}")
        if args.floor:
            print("\nthe floor: only the commands a decision must make, no rule judged")
            for name, floor in (("a script with decide.lua's KEYS and ARGV", True),
                                ("the same commands, pipelined, no script", False)):
                row = [count(floor_script(p) if floor else None, p) for p in ("refused", "allowed")]
                print(f"{name:52s} {row[0] / 1000:9.1f} {row[1] / 1000:9.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
