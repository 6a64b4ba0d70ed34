"""What single steps of a decision script cost Redis, in instructions (callgrind).

Each line runs one small script many times against a redis-server under
valgrind's callgrind and reports the instructions the server executes per
call, so the fixed cost of a call (``return 1``), of its arguments, of the
shared prelude (all of ``lua/common.lua``, and the pieces of it that
``decide.lua`` is built with) and of single commands can be read side by
side. Device state is a busy device's: a full day log (50 shares) and
5 users seen.

    .venv/bin/python bench/lua_costs.py [--calls 200] [--server PATH]

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
from riskservice.limits.scripts import DECIDE  # noqa: E402

COMMON = (ROOT / "riskservice/limits/lua/common.lua").read_text()
# The pieces of common.lua that decide.lua is built with (limits/scripts.py).
DECIDE_PRELUDE = DECIDE.source[:DECIDE.source.index("\n-- One atomic check-and-record")] + "\n"
NOW = 1_800_000_000_000
LOG = b"".join(struct.pack(">Q", NOW - 80_000_000 + i * 1_000_000)[2:] for i in range(50))
USERS = b"".join(struct.pack(">Q", NOW - 1000 * (i + 1))[2:] + struct.pack(">H", 5) + f"u-{i:03d}".encode()
                 for i in range(5))
STATE = struct.pack(">H", 50) + LOG + USERS
PLAN = "local plan = {50, 86400000, 50, 86400000, 20, 86400000}\n"
REQUEST = "x" * 400

# name -> (script, number of 20-byte arguments)
CASES: dict[str, tuple[str, int]] = {
    "36 arguments of 20 bytes": ("return 1", 36),
    "the whole of common.lua": (COMMON + "return 1", 0),
    "decide.lua's prelude (its pieces)": (DECIDE_PRELUDE + "return 1", 0),
    "28 arguments of 20 bytes": ("return 1", 28),
    "GET": ("redis.call('GET', 'st') return 1", 0),
    "GET + SET ... PX": ("redis.call('SET', 'st', redis.call('GET', 'st'), 'PX', '86400000') return 1", 0),
    "HSET 15 fields + PEXPIRE": ("redis.call('HSET', 'rec', " + ", ".join(f"'f{i}', 'value{i:06d}'" for i in range(15))
                                 + ") redis.call('PEXPIRE', 'rec', '345600000') return 1", 0),
    "SET one string, PX": (f"redis.call('SET', 'rec', '{'v' * 200}', 'PX', '345600000') return 1", 0),
    "XADD 6 fields": ("redis.call('XADD', 'ev', '*', 'k', 'decision', 'id', 'abcdefabcdef', 't', '1800000000000', "
                      f"'dec', '1', 'rc', 'device_velocity', 'req', '{REQUEST}') return 1", 0),
    "read_state (GET, split)": (COMMON + PLAN + "read_state('st') return 1", 0),
    "read_state + judge_log x3": (COMMON + PLAN + "local d = read_state('st') for i = 1, 3 do "
                                  f"judge_log(d, {NOW}, 20, 300000) end return 1", 0),
    "read_state + admit (2 SETs)": (COMMON + PLAN + "local d, u = read_state('st') "
                                    f"admit(plan, {NOW}, 'st', 'ul', 'u-001', d, d, u) return 1", 0),
    "2 findings, cjson.encode": (COMMON + "cjson.encode({{'device_velocity', 1, 0, 'captcha', 21, 20, 300, 1234}, "
                                 "{'device_daily_cap', 2, 0, '', 51, 50, 86400, 5555}}) return 1", 0),
    "2 findings, pack_findings": (COMMON + "pack_findings({{'device_velocity', 1, 0, 'captcha', 21, 20, 300, 1234}, "
                                  "{'device_daily_cap', 2, 0, '', 51, 50, 86400, 5555}}) return 1", 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--server", default=None, help="redis-server binary (default: the service's)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    server, client, out = start_server(work, args.server or find_redis_server())
    try:
        version = client.info("server")["redis_version"]

        def reset() -> None:
            client.set("st", STATE)
            client.set("ul", LOG)
            client.delete("rec")

        def count(script: str, nargs: int, before: Callable[[], None]) -> float:
            sha = client.script_load(script)
            argv = ["a" * 20] * nargs
            before()
            client.evalsha(sha, 0, *argv)
            def calls() -> None:
                for _ in range(args.calls):
                    before()
                    client.evalsha(sha, 0, *argv)

            return instructions_while(server.pid, out, calls) / args.calls

        bare = count("return 1", 0, lambda: None)
        base = count("return 1", 0, reset)
        print(f"redis-server {version}: k instructions per EVALSHA")
        print(f"{'a bare EVALSHA (return 1)':40s} {bare / 1000:8.1f}")
        print("added to it by (steps that use common.lua's functions: beyond the prelude):")
        prelude = 0.0
        for name, (script, nargs) in CASES.items():
            added = count(script, nargs, reset) - base
            if script.startswith(COMMON):  # steps beyond the whole prelude
                if script == COMMON + "return 1":
                    prelude = added
                else:
                    added -= prelude
            print(f"  {name:38s} {added / 1000:8.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
