"""Redis work per decision as instructions counted by callgrind, against a baseline commit.

``INFO cpu`` on a shared two-core machine moves by 1.5x between runs; the
instructions redis-server executes do not (valgrind's callgrind counts them,
whatever else the machine is doing). This runs the same decisions through
the service's engine twice, once at ``--baseline`` (checked out into a
temporary worktree) and once on the working tree, each against its own
redis-server under callgrind, and reports instructions per decision and
their ratio.

    .venv/bin/python bench/redis_instructions.py --baseline 9a980c1 [--devices 40] [--decisions 400]
    .venv/bin/python bench/redis_instructions.py --native
    .venv/bin/python bench/redis_instructions.py --native --baseline 3fe1dc5 --replica

The server runs with the service's recommended settings (bench/tuning.py);
``--redis-defaults`` leaves Redis' own.

``--native`` compares, on the working tree, decide.lua with the native decide
(``RISK.DECIDE``, the module ``make native`` builds), each against its own
server with the module loaded, instead of a baseline commit with now; with
``--baseline`` too, the native decide at that commit (its module built in the
temporary worktree) with the native decide now. ``--replica`` attaches a
replica (a plain redis-server, no module) to the measured server, as
production runs: what the server spends feeding it is counted, the
replica's own work is not.

The counts cover everything the server does while the decisions run (the
script, its commands, the protocol, the event loop), after a pre-fill that
gives every device a day of shares (logs full to the daily cap) through the
same engine. Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from tuning import add_argument as add_tuning_argument  # (bench/ is on the path, also in run_in)

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["邀请好友同步优惠", "新店开业，全场八折", "周末一起去吃火锅吧", "这张券很划算，快来领"]


def measure(devices: int, prefill: int, decisions: int, native: str = "", replica: bool = False,
            tuning: dict[str, str] | None = None) -> dict[str, object]:
    """Run in a checkout (sys.path[0]); returns instructions per decision. ``native``: the
    module to load and ``RISK_REDIS_NATIVE`` ("on"/"off"; "" for a checkout before it);
    ``replica``: a replica follows the server."""

    from callgrind import instructions_while, start_server  # (bench/ of this tree is on the path, also in run_in)

    from riskservice.app import create_app
    from riskservice.embedded_redis import find_redis_server
    from riskservice.limits.clock import ManualClock
    from tests.conftest import ISSUER, make_settings

    work = Path(tempfile.mkdtemp())
    server, client, out = start_server(work, find_redis_server())
    port = client.connection_pool.connection_kwargs["port"]
    follower = start_replica(work, find_redis_server(), port) if replica else None
    for name, value in (tuning or {}).items():  # (given: a baseline checkout may predate bench/tuning.py)
        client.config_set(name, value)
    settings: dict[str, object] = {"redis_budget_ms": 5000}
    if native:
        from riskservice.limits.native import built_module

        client.execute_command("MODULE", "LOAD", str(built_module()))
        settings["redis_native"] = native
    try:
        clock = ManualClock(int(time.time() * 1000) - 86_400_000)
        app = create_app(make_settings(f"redis://127.0.0.1:{port}/0", work, **settings), clock=clock)
        logging.getLogger("riskservice.access").disabled = True
        http = app.test_client()
        rng = random.Random(1)
        count = 0

        def share(device: int, user: int) -> dict[str, object]:
            nonlocal count
            count += 1
            return {"event_id": f"e{count}", "device_id": f"dev-{device}", "user_id": f"u-{user}",
                    "coupon_id": f"cp-{rng.randrange(20)}", "merchant_id": "m-1",
                    "channel": rng.choice(["chat", "group", "moments"]),
                    "recipients": [f"r{rng.randrange(10**6)}" for _ in range(rng.randint(1, 4))],
                    "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}",
                    "geo": {"lat": 31.2 + rng.random() / 100, "lon": 121.4 + rng.random() / 100},
                    "text": rng.choice(TEXTS)}

        for k in range(prefill):
            for device in range(devices):
                clock.advance(0.01)
                http.post("/v1/decisions", json=share(device, device * 5 + k % 5), headers=ISSUER)
            clock.advance(86_400 * 0.9 / prefill)
        bodies = []
        for _ in range(decisions):
            device = rng.randrange(devices)
            bodies.append(share(device, device * 5 + rng.randrange(5)))
        answers: dict[str, int] = {}

        def calls() -> None:
            for body in bodies:
                clock.advance(2)
                answer = http.post("/v1/decisions", json=body, headers=ISSUER).get_json()
                key = answer["decision"] + (" (degraded)" if answer["degraded"] else "")
                answers[key] = answers.get(key, 0) + 1

        total = instructions_while(server.pid, out, calls)
        return {"instructions_per_decision": total / decisions, "answers": answers}
    finally:
        for process in (follower, server):
            if process is not None:
                process.terminate()
                process.wait()


def start_replica(work: Path, binary: str, port: int) -> subprocess.Popen[bytes]:
    """A plain redis-server replicating the one on ``port``, once its link is up."""
    from tests.redis_server import free_port

    (work / "replica").mkdir()
    own = free_port()
    proc = subprocess.Popen([binary, "--port", str(own), "--replicaof", "127.0.0.1", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(work / "replica")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=own)
    for _ in range(600):
        try:
            if client.info("replication").get("master_link_status") == "up":
                return proc
        except redis.ConnectionError:
            pass
        time.sleep(0.1)  # ok-sleep: the replica connects and syncs with a server under valgrind
    proc.terminate()
    raise RuntimeError("the replica did not sync")


def run_in(checkout: Path, args: argparse.Namespace, native: str = "") -> dict[str, object]:
    """Measure in another checkout, in a child process that imports that checkout's code."""
    extra = (f", native={native!r}" if native else "") + (", replica=True" if args.replica else "")
    extra += "" if args.redis_defaults else f", tuning={recommended_tuning()!r}"
    code = (f"import sys, json; sys.path.insert(0, {str(checkout)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r}); "
            f"import redis_instructions as b; "
            f"print(json.dumps(b.measure({args.devices}, {args.prefill}, {args.decisions}{extra})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def recommended_tuning() -> dict[str, str]:
    """This tree's recommended Redis settings (read here, in the parent: a baseline
    checkout measured in a child may have none)."""
    sys.path.insert(0, str(ROOT))
    from riskservice.embedded_redis import REDIS_TUNING

    return REDIS_TUNING


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="git ref to compare with")
    parser.add_argument("--native", action="store_true", help="decide.lua against the native decide, this tree")
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--prefill", type=int, default=45, help="shares per device before measuring")
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--replica", action="store_true", help="a replica follows the measured server")
    add_tuning_argument(parser)
    args = parser.parse_args()
    if not (args.native or args.baseline):
        parser.error("give --baseline REF, --native or both")
    if args.native and not args.baseline:
        names = ("decide.lua", "RISK.DECIDE")
        before, after = run_in(ROOT, args, native="off"), run_in(ROOT, args, native="on")
    else:
        names = ("baseline", "now")
        base = Path(tempfile.mkdtemp()) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline], cwd=ROOT, check=True)
        native = "on" if args.native else ""
        try:
            if native:
                subprocess.run(["scripts/build-native"], cwd=base, check=True, capture_output=True,
                               env={**os.environ, "VENV": str(ROOT / ".venv")})
            before = run_in(base, args, native)
            after = run_in(ROOT, args, native)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    ratio = float(after["instructions_per_decision"]) / float(before["instructions_per_decision"])  # type: ignore[arg-type]
    print(f"{'':12s} {'k instructions / decision':>26s}  answers")
    for name, side in zip(names, (before, after), strict=True):
        print(f"{name:12s} {float(side['instructions_per_decision']) / 1000:26.1f}  {side['answers']}")  # type: ignore[arg-type]
    print(f"{names[1]} / {names[0]}: {ratio:.3f}")
    print(json.dumps({"baseline": args.baseline or "decide.lua", "before": before, "after": after,
                      "ratio": round(ratio, 4)}))


if __name__ == "__main__":
    os.environ.setdefault("RISK_LOG_LEVEL", "WARNING")
    main()
