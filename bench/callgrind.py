"""Instructions a redis-server running under valgrind's callgrind executes
while some calls run: its counters are zeroed, the calls made, the counters
dumped, and the dump's total read.

The benches that count instructions (``lua_costs.py``, ``redis_segments.py``,
``redis_instructions.py``) start the server with
``valgrind --tool=callgrind --callgrind-out-file=<out>`` and call
:func:`instructions_while`. Imported as ``callgrind`` with ``bench/`` on the
path: ``redis_instructions.py`` also runs inside an older checkout, whose
``bench`` package may not have this module.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

__all__ = ["instructions_while", "start_server"]


def start_server(work: Path, server: str) -> tuple[subprocess.Popen[bytes], redis.Redis, Path]:
    """The redis-server binary ``server`` under callgrind, on a free port, data in ``work``,
    once it answers: the process, a client, and the prefix its dumps are written to."""
    from tests.redis_server import free_port

    out = work / "callgrind.out"
    port = free_port()
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", server, "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(600):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)  # ok-sleep: valgrind starts the server slowly
    return proc, client, out


def instructions_while(pid: int, out: Path, run: Callable[[], object]) -> int:
    """Instructions the server ``pid`` (dumping to ``out.<n>``) executed during ``run()``."""
    dumps = len(glob.glob(f"{out}.*"))
    subprocess.run(["callgrind_control", "--zero", str(pid)], capture_output=True, check=False)
    run()
    subprocess.run(["callgrind_control", "--dump", str(pid)], capture_output=True, check=False)
    deadline = time.monotonic() + 30
    while len(glob.glob(f"{out}.*")) <= dumps and time.monotonic() < deadline:
        time.sleep(0.1)  # ok-sleep: waiting for callgrind's dump file
    time.sleep(0.5)  # ok-sleep: the dump is written after the file appears
    text = Path(max(glob.glob(f"{out}.*"), key=os.path.getmtime)).read_text()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
