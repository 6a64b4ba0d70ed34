"""Group commit of script calls: the calls a worker has waiting share round trips.

Under load, a gevent (or threaded) worker has several requests waiting on
Redis at once. Sent one by one, each costs the worker a write, a read and a
wake-up, and costs Redis a wake-up, a read and a write: about 20 us of
Redis CPU per round trip on a VM, most of it kernel time, a sixth of a
decision's whole cost on one Redis and more on a cluster, where a decision
makes two or three round trips.

Each server (a *lane*: the one Redis, or one master of a cluster) has its
own queue. The first call that finds no round trip in flight to a server
leads it: it sends at once, and every call for that server that arrives
meanwhile queues. When the replies are in, the leader hands the lane to the
first queued call, which sends the whole queue in one write and reads the
replies in order. Nothing waits on a timer: a lone call goes out at once,
and batches form only while a server is busy, as in a database's group
commit (Envoy's rate limiter pipelines the same way, with a time window).

A call may span lanes (a cluster call to two masters). It leads the lanes
it found idle, writing to all of them before reading any, so its round trips
still overlap; on the others it waits behind the round trip in flight. A
slow or dead server holds up only the calls that need it.

A batch is plain pipelining, not a transaction: every script still runs
atomically on its own, and each call gets its own reply or error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from riskservice.errors import StorageError

__all__ = ["GroupCommit", "Part"]

_UNSET = object()
H = TypeVar("H")


class _Call:
    """One :meth:`GroupCommit.submit`: its parts (one per lane) and what wakes it."""

    __slots__ = ("parts", "wake")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.wake = threading.Event()


class Part:
    """A call's share for one lane: what the sender needs (opaque here), then its reply or error."""

    __slots__ = ("call", "done", "error", "lane", "lead", "payload", "reply", "taken")

    def __init__(self, call: _Call, lane: Hashable, payload: Any) -> None:
        self.call = call
        self.lane = lane
        self.payload = payload
        self.reply: Any = _UNSET
        self.error: BaseException | None = None
        self.lead = False  # this call sends this lane's next batch
        self.taken = False  # in a batch (sent, or being sent)
        self.done = False

    @property
    def answered(self) -> bool:
        """A reply or an error was set."""
        return self.error is not None or self.reply is not _UNSET

    def result(self) -> Any:
        """The reply, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.reply


class _Lane:
    __slots__ = ("leading", "queue")

    def __init__(self) -> None:
        self.queue: deque[Part] = deque()
        self.leading = False


Start = Callable[[Hashable, Sequence[Part]], H]
Complete = Callable[[H], None]


class GroupCommit(Generic[H]):
    """Batches concurrent calls into one round trip per server (see the module).

    Parameters
    ----------
    start : callable
        ``start(lane, parts)`` writes a batch to the lane's server and
        returns a handle; it must not wait for replies.
    complete : callable
        ``complete(handle)`` reads the batch's replies and sets each part's
        ``reply`` or ``error``. An exception either raises becomes every
        unanswered part's error.
    max_batch : int
        Most calls one round trip carries (the rest wait for the next).
    """

    def __init__(self, start: Start[H], complete: Complete[H], max_batch: int = 64) -> None:
        self._start = start
        self._complete = complete
        self._max_batch = max_batch
        self._lanes: dict[Hashable, _Lane] = {}
        # One lock for every lane: what it guards is a few list operations,
        # never I/O. Under gevent it is cooperative (and never contended).
        self._lock = threading.Lock()
        self.batches = 0  # round trips made, and parts they carried (for a bench)
        self.parts = 0

    def submit(self, payloads: dict[Hashable, Any], wait_s: float | None) -> dict[Hashable, Any]:
        """Send each lane its payload and return each lane's reply.

        ``wait_s`` bounds the time spent queued behind round trips in flight;
        the round trips themselves are bounded by their connections'
        time-outs. A call that gives up while queued is withdrawn; one that
        gives up while its batch is in flight has its reply dropped (scripts
        are given a deadline, so one that runs late changes nothing). Any
        lane's error is raised.
        """
        call = _Call()
        with self._lock:
            for lane_key, payload in payloads.items():
                part = Part(call, lane_key, payload)
                call.parts.append(part)
                lane = self._lanes.get(lane_key)
                if lane is None:
                    lane = self._lanes[lane_key] = _Lane()
                if lane.leading:
                    lane.queue.append(part)
                else:
                    lane.leading = part.lead = True
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            with self._lock:
                mine = [part for part in call.parts if part.lead and not part.taken]
                if not mine:
                    if all(part.done for part in call.parts):
                        break
                    call.wake.clear()  # (under the lock: no wake-up is lost)
            if mine:
                self._lead(mine)
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not call.wake.wait(left):
                self._give_up(call)
        return {part.lane: part.result() for part in call.parts}

    def _give_up(self, call: _Call) -> None:
        """Withdraw a call that waited its whole ``wait_s``, unless it was just handed a lane."""
        with self._lock:
            if any(part.lead and not part.taken for part in call.parts):
                return  # others wait for it to send: it must
            for part in call.parts:
                if not part.taken:
                    self._lanes[part.lane].queue.remove(part)
        raise StorageError("redis busy: no round trip within the budget")

    def _lead(self, mine: list[Part]) -> None:
        """Send a batch on every lane ``mine`` leads, then read them all."""
        batches: list[tuple[Hashable, list[Part]]] = []
        with self._lock:
            for part in mine:
                queue = self._lanes[part.lane].queue
                batch = [part]
                while queue and len(batch) < self._max_batch:
                    batch.append(queue.popleft())
                for member in batch:
                    member.taken = True
                batches.append((part.lane, batch))
        started: list[tuple[Hashable, list[Part], H]] = []
        try:
            for lane, batch in batches:
                try:
                    started.append((lane, batch, self._start(lane, batch)))
                except BaseException as exc:  # every waiter must be answered, whatever happened
                    self._finish(lane, batch, exc)
                    if not isinstance(exc, Exception):
                        raise
            for lane, batch, handle in started:
                failure: BaseException | None = None
                try:
                    self._complete(handle)
                except BaseException as exc:  # as above
                    failure = exc
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    self._finish(lane, batch, failure)
        finally:
            # A batch not yet finished (an interrupt above) must still be answered.
            for lane, batch in batches:
                if not batch[0].done:
                    self._finish(lane, batch, StorageError("redis batch interrupted"))

    def _finish(self, lane_key: Hashable, batch: list[Part], failure: BaseException | None) -> None:
        """Answer a batch's parts, wake their calls, and hand the lane on."""
        if failure is not None:
            error = failure if isinstance(failure, StorageError) else StorageError(f"redis batch failed: {failure}")
            for part in batch:
                if not part.answered:
                    part.error = error
        with self._lock:
            self.batches += 1
            self.parts += len(batch)
            for part in batch:
                part.done = True
                part.call.wake.set()
            lane = self._lanes[lane_key]
            if lane.queue:
                nxt = lane.queue.popleft()  # it sends the rest of the queue with its own
                nxt.lead = True
                nxt.call.wake.set()
            else:
                lane.leading = False
