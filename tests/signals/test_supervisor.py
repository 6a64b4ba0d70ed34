"""The supervisor starts the consumer again whenever it exits, waiting longer
while it keeps failing, and stops it for good on stop (real processes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from riskservice.signals.supervisor import ConsumerSupervisor
from tests.cluster.nodes import process_alive

# A stand-in consumer: notes its pid, lives for argv[2] seconds, exits.
PROGRAM = ("import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); "
           "time.sleep(float(sys.argv[2]))")  # ok-sleep: the stand-in process's own life span, not the test's


class Lines:
    """Collects what the supervisor logs (gunicorn's logger takes the same calls)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_an_exiting_consumer_is_started_again_with_a_growing_wait(tmp_path: Path) -> None:
    notes, log = tmp_path / "pids", Lines()
    sup = ConsumerSupervisor([sys.executable, "-c", PROGRAM, str(notes), "0.05"], log,
                             first_backoff_s=0.1, max_backoff_s=0.4, stable_s=60)
    first = sup.start()
    try:
        deadline = time.monotonic() + 30
        while len(pids(notes)) < 5:
            assert time.monotonic() < deadline, log.lines
            time.sleep(0.05)  # ok-sleep: real processes exit and are started again
    finally:
        sup.stop(timeout_s=5)
    started = pids(notes)
    assert started[0] == first and len(set(started)) == len(started)
    waits = [line.rsplit(" after ", 1)[1] for line in log.lines if line.startswith("signal consumer exited")]
    assert waits[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]
    assert sup.restarts >= 4
    assert [line for line in log.lines if line.startswith("signal consumer restarted")][:4] == [
        f"signal consumer restarted (pid {pid})" for pid in started[1:5]]
    count = len(pids(notes))
    time.sleep(0.6)  # ok-sleep: longer than the longest wait, to see that nothing starts after stop
    assert len(pids(notes)) == count


def test_stop_ends_a_running_consumer_and_starts_no_other(tmp_path: Path) -> None:
    notes = tmp_path / "pids"
    sup = ConsumerSupervisor([sys.executable, "-c", PROGRAM, str(notes), "600"], Lines(), first_backoff_s=0.05)
    pid = sup.start()
    deadline = time.monotonic() + 30
    while not pids(notes):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # ok-sleep: the process must start
    sup.stop(timeout_s=5)
    assert not process_alive(pid)
    time.sleep(0.3)  # ok-sleep: longer than the wait before a restart
    assert pids(notes) == [pid] and sup.restarts == 0
