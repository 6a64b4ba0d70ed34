"""Instructions per call, under valgrind's callgrind, of the scripts around a
decision (``decide.lua`` has bench/redis_segments.py):

- the user-slot scripts of a Redis Cluster decision (``reserve.lua`` before
  the device's slot decides, ``settle.lua`` after): a busy user with 40
  shares in the day, no other place held; and, when the native module is
  built (``make native``), its commands that do the same (``RISK.RESERVE``,
  ``RISK.SETTLE``) on the same calls;
- ``outcome.lua``, a share's outcome report, on a device whose success-rate
  log already holds 0, 50 or 98 reports of the window (the service keeps at
  most 100: twice the device's daily cap); and the module's ``RISK.OUTCOME``
  on the same calls.

What a call needs reset from outside (the user's log and places, the
outcome log) is measured alone and subtracted.

    .venv/bin/python bench/script_costs.py [--calls 100]

Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callgrind import instructions_while, start_server  # noqa: E402  (bench/ is this script's folder)

from riskservice.embedded_redis import find_redis_server  # noqa: E402
from riskservice.limits.cluster_io import RESERVE, SETTLE  # noqa: E402
from riskservice.limits.keys import decision_keys  # noqa: E402
from riskservice.limits.native import COMMANDS, built_module  # noqa: E402
from riskservice.limits.scripts import DECIDE, OUTCOME  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from tests.limits.args import decide_args  # noqa: E402

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

        module = built_module()
        if module is not None:
            client.execute_command("MODULE", "LOAD", str(module))

        def reserved(native: bool = False) -> str:
            nonlocal calls
            calls += 1
            reset()
            command = ("EVALSHA", reserve) if not native else (COMMANDS["reserve"],)
            reply = client.execute_command(*command, 3, LOG, BAN, PENDING, str(NOW), "", f"ev{calls}", plan, 2000, "")
            assert reply[2] == 1, reply
            return f"ev{calls}"

        def settled(native: bool = False) -> None:
            command = ("EVALSHA", settle) if not native else (COMMANDS["settle"],)
            assert client.execute_command(*command, 2, LOG, PENDING, reserved(native), "1", plan) == b"taken"

        def per_call(run: object) -> float:
            run()  # type: ignore[operator]
            return instructions_while(server.pid, out, lambda: [run() for _ in range(args.calls)]) / args.calls  # type: ignore[operator]

        base = per_call(reset)
        print(f"k instructions per call ({args.calls} calls each)")
        for native in (False, True) if module is not None else (False,):
            one = per_call(lambda native=native: reserved(native)) - base
            both = per_call(lambda native=native: settled(native)) - base
            names = ("RISK.RESERVE", "RISK.SETTLE", "both (module)") if native else \
                ("reserve.lua", "settle.lua", "both (Lua)")
            print(f"{names[0]:<14}{one / 1000:8.1f}")
            print(f"{names[1]:<14}{(both - one) / 1000:8.1f}")
            print(f"{names[2]:<14}{both / 1000:8.1f}")
        decide, outcome = client.script_load(DECIDE.source), client.script_load(OUTCOME.source)
        records = []
        for i in range(6 * args.calls + 6):  # admitted shares of one device (a user each), to report on
            keys = decision_keys(f"e{i}", "dev-o", f"u{i}", None)
            client.delete("risk:{d:dev-o}:state")
            client.evalsha(decide, len(keys), *keys, *decide_args(
                now=NOW, decision_id=f"{i:032x}", user_id=f"u{i}", device_id="dev-o", plan=plan,
                request=b"x" * 100).wire())
            records.append(keys.event)
        reports = iter(records)
        for held, native in [(h, n) for n in ((False, True) if module is not None else (False,))
                             for h in (0, 50, 98)]:
            prior = b"".join(struct.pack(">Q", NOW - 80_000_000 + i * 100_000)[2:] + bytes([i % 2])
                             + struct.pack(">I", i) for i in range(held))

            def reset_outcomes(prior: bytes = prior) -> None:
                client.set("risk:{d:dev-o}:outcomes", prior)

            def reported(reset_outcomes: Callable[[], None] = reset_outcomes, native: bool = native) -> None:
                reset_outcomes()
                command = (COMMANDS["outcome"],) if native else ("EVALSHA", outcome)
                status = client.execute_command(*command, 3, next(reports), "risk:{d:dev-o}:outcomes", "risk:events",
                                                str(NOW + 1000), 1, 1, 1, 86_400_000, 100, 86_400_000)[0]
                assert status == b"ok", status

            cost = per_call(reported) - per_call(reset_outcomes)
            print(f"{'RISK.OUTCOME' if native else 'outcome.lua'}, {held:2d} reports held {cost / 1000:8.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
