"""Writes on a user's slot that follow a decision on Redis Cluster, sent in
the background and retried until they land.

A decision on a cluster ends with a write on the user's slot after the
caller was answered: ``settle.lua`` takes the place ``reserve.lua`` held
into the user's daily log, or releases it. A challenge passed later, and a
share allowed during an outage, are counted the same way (a place written,
then settled). If such a write is lost, the user's window misses a share it
counted; so a failed write is tried again, with a growing pause, for up to
``give_up_s`` (a master being failed over answers again within seconds).

Retrying is safe, and matters most after a time-out, when the first attempt
usually *did* run (the master was slow, the reply came too late): a settle
does nothing when its place is gone, and a share counted after the fact (a
passed challenge, an outage share: placed and taken in one ``settle.lua``
call) is counted once, guarded by a key of its own
(:func:`riskservice.limits.keys.once_key`). A test pauses the user's master,
lets the first attempt time out and run on waking, and finds the share once.

One thread sends everything that is waiting, one pipeline per master.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from riskservice.limits.cluster_io import Command

__all__ = ["GIVE_UP_S", "SETTLE_BATCH", "SettleQueue", "UserWrite"]

log = logging.getLogger("riskservice.cluster")

#: Writes sent in one pipeline at most.
SETTLE_BATCH = 500
#: How long a failing write is tried again: longer than a failover takes.
GIVE_UP_S = 60.0
# The first pause before a retry, doubled each time up to the last.
FIRST_PAUSE_S, LAST_PAUSE_S = 0.05, 2.0


@dataclass(eq=False)
class UserWrite:
    """Commands for one user's slot, sent together (``key`` routes them; compared by identity)."""

    key: str
    commands: list[Command]
    first_try: float = field(default_factory=time.monotonic)
    tries: int = 0


Send = Callable[[list[tuple[str, list[Command]]]], list[list[Any]]]


class SettleQueue:
    """A background sender of :class:`UserWrite` groups, with retries.

    Parameters
    ----------
    send : callable
        One round trip of groups ``(routing key, commands)`` returning each
        group's replies, an exception in place of a failed command
        (``ClusterIO._scripted``).
    give_up_s : float
        How long a failing write is tried again before it is logged as lost.
    """

    def __init__(self, send: Send, *, give_up_s: float = GIVE_UP_S) -> None:
        self._send = send
        self.give_up_s = give_up_s
        self.lost = 0  # writes given up (see take_lost)
        self.retried = 0  # tries after a first failure, in all
        self._queue: queue.Queue[UserWrite] = queue.Queue()
        # (when due, tie-breaker, write): writes waiting for their next try
        self._later: list[tuple[float, int, UserWrite]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name="risk-settle", daemon=True)
        self._thread.start()

    def put(self, write: UserWrite) -> None:
        """Send ``write`` soon (the caller does not wait)."""
        self._queue.put(write)

    def flush(self) -> None:
        """Wait until every write put so far has landed or was given up (tests, shutdown)."""
        self._queue.join()

    def take_lost(self) -> int:
        """Writes given up since the last call (for a counter)."""
        lost, self.lost = self.lost, 0
        return lost

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                failed = self._try(batch)
            except Exception as exc:  # a thread that dies would lose every later write
                log.warning("user-slot writes failed", extra={"error": str(exc), "count": len(batch)})
                failed = batch
            done = [w for w in batch if w not in failed]
            for write in failed:
                if not self._again(write):
                    done.append(write)
            for _ in done:
                self._queue.task_done()

    def _next_batch(self) -> list[UserWrite]:
        """What is waiting, and the retries that are due (blocks until there is one)."""
        batch: list[UserWrite] = []
        while not batch:
            now = time.monotonic()
            while self._later and self._later[0][0] <= now:
                batch.append(heapq.heappop(self._later)[2])
            timeout = None if batch or not self._later else max(self._later[0][0] - now, 0.0)
            try:
                batch.append(self._queue.get(block=not batch, timeout=timeout))
            except queue.Empty:
                continue
        while len(batch) < SETTLE_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _try(self, batch: list[UserWrite]) -> list[UserWrite]:
        """Send ``batch`` once; the writes that failed."""
        for write in batch:
            write.tries += 1
        replies = self._send([(w.key, w.commands) for w in batch])
        return [w for w, out in zip(batch, replies, strict=True) if any(isinstance(r, Exception) for r in out)]

    def _again(self, write: UserWrite) -> bool:
        """Schedule another try of ``write``; False when it has failed for too long."""
        if time.monotonic() - write.first_try >= self.give_up_s:
            self.lost += 1
            log.error("a counted share is missing from the user's window: its write kept failing",
                      extra={"key": write.key, "tries": write.tries})
            return False
        self.retried += 1
        pause = min(FIRST_PAUSE_S * 2 ** (write.tries - 1), LAST_PAUSE_S)
        heapq.heappush(self._later, (time.monotonic() + pause, next(self._order), write))
        return True
