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

With ``RISK_REDIS_WAIT_REPLICAS`` each batch ends, on each master, with a
``WAIT``; when fewer replicas acknowledged, that master's writes are sent
again (``WAIT_RESENDS`` times at most: a settle that already ran changes
nothing, and one that a failover lost runs on the promoted replica), then
counted as unreplicated: a master promoted without a replica of its own can
never satisfy the ``WAIT``.

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
#: Sends again of a write whose master's WAIT fell short.
WAIT_RESENDS = 3


@dataclass(eq=False)
class UserWrite:
    """Commands for one user's slot, sent together (``key`` routes them; compared by identity)."""

    key: str
    commands: list[Command]
    first_try: float = field(default_factory=time.monotonic)
    tries: int = 0
    resent: int = 0  # sends again after a WAIT fell short


Send = Callable[[list[tuple[str, list[Command]]]], list[list[Any]]]
#: The master a key's slot is on, by name.
NodeOf = Callable[[str], str]


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
    wait : tuple of (int, int), optional
        ``(replicas, ms)``: each batch ends, on each master, with ``WAIT
        replicas ms``; the writes of a master that fewer replicas
        acknowledged are sent again (a settle repeated where it already ran
        changes nothing), so a failover right after a write does not lose it.
    node_of : callable, optional
        The master of a key (needed with ``wait``).
    """

    def __init__(self, send: Send, *, give_up_s: float = GIVE_UP_S, wait: tuple[int, int] | None = None,
                 node_of: NodeOf | None = None) -> None:
        if wait is not None and node_of is None:
            raise ValueError("wait needs node_of")
        self._send = send
        self._wait = wait
        self._node_of = node_of
        self.give_up_s = give_up_s
        self.lost = 0  # writes given up (see take_lost)
        self.retried = 0  # tries after a first failure, in all
        self.unreplicated = 0  # writes left with fewer replicas than asked
        self._queue: queue.Queue[UserWrite] = queue.Queue()
        # (when due, tie-breaker, write): writes waiting for their next try
        self._later: list[tuple[float, int, UserWrite]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name="risk-settle", daemon=True)
        self._thread.start()

    def put(self, write: UserWrite) -> None:
        """Send ``write`` soon (the caller does not wait)."""
        self._queue.put(write)

    def send_now(self, writes: list[UserWrite]) -> None:
        """Send ``writes`` in the caller's thread; those that fail are left to the queue's retries."""
        try:
            failed, short = self._try(writes)
        except Exception as exc:
            log.warning("user-slot writes failed; retrying them", extra={"error": str(exc), "count": len(writes)})
            failed, short = writes, []
        for write in [*failed, *short]:
            self.put(write)

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
                failed, short = self._try(batch)
            except Exception as exc:  # a thread that dies would lose every later write
                log.warning("user-slot writes failed", extra={"error": str(exc), "count": len(batch)})
                failed, short = batch, []
            done = [w for w in batch if w not in failed and w not in short]
            for write in failed:
                if not self._again(write):
                    done.append(write)
            for write in short:
                write.resent += 1
                if write.resent > WAIT_RESENDS or not self._again(write):
                    self.unreplicated += write.resent > WAIT_RESENDS
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

    def _try(self, batch: list[UserWrite]) -> tuple[list[UserWrite], list[UserWrite]]:
        """Send ``batch`` once: the writes that failed, and (with ``wait``) the
        others of masters whose ``WAIT`` fell short."""
        for write in batch:
            write.tries += 1
        groups = [(w.key, list(w.commands)) for w in batch]
        master: list[str] = []
        replicas = 0
        if self._wait is not None and self._node_of is not None:
            replicas = self._wait[0]
            master = [self._node_of(w.key) for w in batch]
            last = {name: i for i, name in enumerate(master)}  # each master's last group ends with the WAIT
            for i in last.values():
                groups[i][1].append(("WAIT", *self._wait))
        replies = self._send(groups)
        failed: list[UserWrite] = []
        short_masters: set[str] = set()
        for i, out in enumerate(replies):
            if any(isinstance(r, Exception) for r in out[:len(batch[i].commands)]):
                failed.append(batch[i])
            if len(out) > len(batch[i].commands):  # this master's WAIT
                acked = out[-1]
                if not isinstance(acked, int) or acked < replicas:
                    short_masters.add(master[i])
        short = [w for i, w in enumerate(batch) if short_masters and master[i] in short_masters and w not in failed]
        return failed, short

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
