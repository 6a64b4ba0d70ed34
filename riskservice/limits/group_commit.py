"""Group commit of script calls: the calls a worker has waiting share one round trip.

Under load, a gevent (or threaded) worker has several requests waiting on
Redis at once. Sent one by one, each costs the worker a write, a read and a
wake-up, and costs Redis a wake-up, a read and a write: about 20 us of
Redis CPU per round trip on a VM, most of it kernel time, a sixth of a
decision's whole cost. Here the first caller that finds no batch in flight
leads: it sends its call at once, and every call that arrives while that
round trip is in flight queues behind it. When the replies are in, the
leader hands its role to the first queued call, which sends the whole queue
in one write and reads the replies in order. Nothing waits on a timer: a
lone call goes out at once, and batches form only while Redis is busy, as
in a database's group commit (Envoy's rate limiter pipelines the same way,
with a time window instead).

The batch is plain pipelining, not a transaction: every script still runs
atomically on its own, and each call gets its own reply or error.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from riskservice.errors import StorageError

__all__ = ["Call", "GroupCommit"]

_UNSET = object()


class Call:
    """One call: what the sender needs to send it (opaque here), then its reply or error."""

    __slots__ = ("done", "error", "lead", "payload", "reply", "wake")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.reply: Any = _UNSET
        self.error: BaseException | None = None
        self.done = False
        self.lead = False  # handed the leader's role while queued
        self.wake: threading.Event | None = None

    @property
    def answered(self) -> bool:
        """A reply or an error was set."""
        return self.error is not None or self.reply is not _UNSET

    def result(self) -> Any:
        """The reply, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.reply


Sender = Callable[[Sequence[Call]], None]


class GroupCommit:
    """Batches concurrent calls into one round trip each (see the module).

    Parameters
    ----------
    send : callable
        Sends a batch in one round trip and sets each call's ``reply`` or
        ``error``; an exception it raises becomes every unanswered call's
        error.
    max_batch : int
        Most calls one round trip carries (the rest wait for the next).
    """

    def __init__(self, send: Sender, max_batch: int = 64) -> None:
        self._send = send
        self._max_batch = max_batch
        self._queue: deque[Call] = deque()
        self._leading = False
        # Under gevent this is a cooperative lock; greenlets never switch
        # while holding it (nothing inside blocks).
        self._lock = threading.Lock()
        self.batches = 0  # round trips made, and calls they carried (for a bench)
        self.calls = 0

    def submit(self, payload: Any, wait_s: float | None) -> Any:
        """Send ``payload`` (one call, as the sender understands it) and return its reply.

        ``wait_s`` bounds the time spent queued behind a round trip in
        flight; the round trip itself is bounded by the connection's
        timeout. A call that gives up while queued is withdrawn; one that
        gives up while its batch is in flight has its reply dropped (scripts
        are given a deadline, so one that runs late changes nothing).
        """
        call = Call(payload)
        with self._lock:
            if self._leading:
                call.wake = threading.Event()
                self._queue.append(call)
            else:
                self._leading = True
                call.lead = True
        if not call.lead:
            assert call.wake is not None
            if not call.wake.wait(wait_s):
                with self._lock:
                    if not call.lead and not call.done:
                        try:
                            self._queue.remove(call)
                        except ValueError:
                            pass  # in a batch in flight: its reply will be dropped
                        raise StorageError("redis busy: no round trip within the budget")
            if not call.lead:
                return call.result()
        self._lead(call)
        return call.result()

    def _lead(self, own: Call) -> None:
        """Send the queue (``own`` first), answer every call, hand the role on."""
        with self._lock:
            batch = [own]
            while self._queue and len(batch) < self._max_batch:
                batch.append(self._queue.popleft())
        try:
            self._send(batch)
        except BaseException as exc:  # every waiter must be answered, whatever happened
            for call in batch:
                if not call.answered:
                    call.error = exc if isinstance(exc, StorageError) else StorageError(f"redis batch failed: {exc}")
            if not isinstance(exc, Exception):
                raise
        finally:
            self.batches += 1
            self.calls += len(batch)
            with self._lock:
                for call in batch:
                    call.done = True
                    if call.wake is not None:
                        call.wake.set()
                if self._queue:
                    nxt = self._queue.popleft()  # it leads with the rest of the queue
                    nxt.lead = True
                    assert nxt.wake is not None
                    nxt.wake.set()
                else:
                    self._leading = False
