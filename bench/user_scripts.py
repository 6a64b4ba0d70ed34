"""Instructions of the user-slot scripts of a Redis Cluster decision
(``reserve.lua`` before the device's slot decides, ``settle.lua`` after), per
call, under valgrind's callgrind: a busy user with 40 shares in the day, no
other place held; the user's log and places are reset before each call (two
commands from outside, measured alone and subtracted).

    .venv/bin/python bench/user_scripts.py [--calls 100]

Needs valgrind (Debian package ``valgrind``).
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

from riskservice.embedded_redis import find_redis_server  # noqa: E402
from riskservice.limits.cluster_io import RESERVE, SETTLE  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402

NOW = 1_800_000_000_000
LOG, BAN, PENDING = "risk:{u:u1}:log", "risk:{u:u1}:ban", "risk:{u:u1}:pending"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    plan = load_policy(str(ROOT / "config/policy.yaml")).default.plan
    log = b"".join(struct.pack(">Q", NOW - 80_000_000 + i * 1_000_000)[2:] for i in range(40))
    work = Path(tempfile.mkdtemp())
    server, client, out = start_server(work, find_redis_server())
    try:
        reserve, settle = client.script_load(RESERVE.source), client.script_load(SETTLE.source)
        calls = 0

        def reset() -> None:
            client.set(LOG, log)
            client.delete(PENDING)

        def reserved() -> str:
            nonlocal calls
            calls += 1
            reset()
            client.evalsha(reserve, 3, LOG, BAN, PENDING, str(NOW), "", f"ev{calls}", plan, 2000, "")
            return f"ev{calls}"

        def settled() -> None:
            client.evalsha(settle, 2, LOG, PENDING, reserved(), "1", plan)

        def per_call(run: object) -> float:
            run()  # type: ignore[operator]
            return instructions_while(server.pid, out, lambda: [run() for _ in range(args.calls)]) / args.calls  # type: ignore[operator]

        base = per_call(reset)
        one = per_call(reserved) - base
        both = per_call(settled) - base
        print(f"k instructions per call ({args.calls} calls each)")
        print(f"reserve.lua {one / 1000:8.1f}")
        print(f"settle.lua  {(both - one) / 1000:8.1f}")
        print(f"both        {both / 1000:8.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
