"""Keeps the signal consumer running beside gunicorn's master.

gunicorn restarts a worker that dies, but the consumer is not a worker: a
consumer that exits (Redis unreachable at its start, a bug, the kernel's
out-of-memory killer) would leave the service judging on flags that only
age, with nothing but one log line to say so. The master's hook starts it
through a :class:`ConsumerSupervisor`, whose thread restarts it when it exits:
after 1 s, doubling to 60 s while it keeps failing quickly, back to 1 s once
a run lasted a minute. Every exit and restart is logged; ``/readyz`` says
``down`` meanwhile (riskservice/signals/heartbeat.py).

gunicorn's master reaps every child that exits (``waitpid(-1)``), so the exit
code it logs may be lost (reported as 0).
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

__all__ = ["ConsumerSupervisor"]


class ConsumerSupervisor:
    """Runs ``command`` and starts it again whenever it exits, until :meth:`stop`.

    Parameters
    ----------
    command : list of str
        The consumer's command line.
    log : logging.Logger or gunicorn's logger
        Where exits and restarts are logged (``%``-style arguments).
    first_backoff_s, max_backoff_s : float
        The wait before a restart, doubling from the first to the most.
    stable_s : float
        A run at least this long resets the wait to the first.
    """

    def __init__(self, command: list[str], log: Any, *, first_backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0, stable_s: float = 60.0) -> None:
        self.command, self.log = command, log
        self.first, self.most, self.stable_s = first_backoff_s, max_backoff_s, stable_s
        self.restarts = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> int:
        """Start the consumer and the thread that watches it; its pid."""
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="signal-consumer-supervisor", daemon=True)
        self._thread.start()
        assert self._proc is not None
        return self._proc.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop watching, then stop the consumer (SIGTERM, SIGKILL after ``timeout_s``)."""
        self.stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _spawn(self) -> None:
        with self._lock:
            if self.stopping.is_set():
                return
            self._proc = subprocess.Popen(self.command)
            self._started_at = time.monotonic()

    def _watch(self) -> None:
        backoff = self.first
        while not self.stopping.is_set():
            proc = self._proc
            assert proc is not None
            while proc.poll() is None:
                if self.stopping.wait(0.5):
                    return
            if self.stopping.is_set():
                return
            if time.monotonic() - self._started_at >= self.stable_s:
                backoff = self.first
            # (the wait first: a service shutting down stops the consumer before it
            # stops this watch, and that exit is no news)
            if self.stopping.wait(backoff):
                return
            self.log.warning("signal consumer exited (pid %s, code %s); started again after %.1f s",
                             proc.pid, proc.returncode, backoff)
            self._spawn()
            if self.stopping.is_set():
                return
            self.restarts += 1
            self.log.info("signal consumer restarted (pid %s)", self.pid)
            backoff = min(backoff * 2, self.most)
