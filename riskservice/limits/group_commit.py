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
replies in order. By default nothing waits on a timer: a lone call goes
out at once, and batches form only while a server is busy, as in a
database's group commit. With a *linger* (``RISK_REDIS_LINGER_US``), a call
that finds its server idle waits that long before sending, so the calls
that arrive meanwhile go with it (Envoy's rate limiter pipelines with such
a time window): fewer round trips for Redis and the worker under load, that
much more latency for a call alone.

A call may span lanes (a cluster call to two masters). It leads the lanes
it found idle, writing to all of them before reading any, so its round trips
still overlap; on the others it waits behind the round trip in flight. A
slow or dead server holds up only the calls that need it: a lane handed to
a call still reading another server's replies is taken over by the next
call that arrives for it, which sends the stuck call's part with its own.

A batch is plain pipelining, not a transaction: every script still runs
atomically on its own, and each call gets its own reply or error.
"""

from __future__ import annotations

import math
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

    __slots__ = ("busy", "parts", "wake")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.wake = threading.Event()
        self.busy = False  # sending or reading a batch: it cannot start another now


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
    __slots__ = ("leading", "next", "queue")

    def __init__(self) -> None:
        self.queue: deque[Part] = deque()
        self.leading = False
        self.next: Part | None = None  # the part that sends the next batch, until it does


Start = Callable[[Hashable, Sequence[Part]], H]
Complete = Callable[[H, Callable[[], None]], None]


class GroupCommit(Generic[H]):
    """Batches concurrent calls into one round trip per server (see the module).

    Parameters
    ----------
    start : callable
        ``start(lane, parts)`` writes a batch to the lane's server and
        returns a handle; it must not wait for replies.
    complete : callable
        ``complete(handle, release)`` reads the batch's replies and sets
        each part's ``reply`` or ``error``. It may call ``release()`` once
        the lane can take the next batch before it is done (e.g. before
        reading a ``WAIT``'s reply: a lagging replica then holds up this
        batch's answers, not the next batch). An exception either raises
        becomes every unanswered part's error.
    max_batch : int
        Most calls one round trip carries (the rest wait for the next).
    linger_s : float
        How long a call that finds its server idle waits before sending, so
        that calls arriving meanwhile share its round trip (0: it sends at
        once). A worker's requests reach Redis spaced by their Python work,
        so without it most round trips carry one call under load.
    sleep : callable
        Waits ``linger_s`` (``time.sleep``: under gevent it yields to the
        other requests); tests pass their own.
    """

    def __init__(self, start: Start[H], complete: Complete[H], max_batch: int = 64, linger_s: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._start = start
        self._complete = complete
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._sleep = sleep
        self._lanes: dict[Hashable, _Lane] = {}
        # One lock for every lane: what it guards is a few list operations,
        # never I/O. Under gevent it is cooperative (and never contended).
        self._lock = threading.Lock()
        self.batches = 0  # round trips made, and parts they carried (for a bench)
        self.parts = 0

    def submit(self, payloads: dict[Hashable, Any], wait_s: float | None) -> dict[Hashable, Any]:
        """Send each lane its payload and return each lane's reply.

        ``wait_s`` bounds the time spent queued behind round trips in flight,
        and twice that the whole call: a batch that another call sends for
        it is bounded by that call's connection time-outs (``wait_s`` each,
        the other half of the budget), and the cap only guards against a
        sender that stalls. A call that gives up while queued is withdrawn;
        one that gives up while its batch is in flight has its reply dropped
        (scripts are given a deadline, so one that runs late changes
        nothing). Any lane's error is raised.
        """
        call = _Call()
        with self._lock:
            for lane_key, payload in payloads.items():
                part = Part(call, lane_key, payload)
                call.parts.append(part)
                lane = self._lanes.get(lane_key)
                if lane is None:
                    lane = self._lanes[lane_key] = _Lane()
                if not lane.leading:
                    lane.leading = part.lead = True
                    lane.next = part
                elif lane.next is not None and lane.next.call.busy:
                    # The lane was handed to a call still reading another
                    # lane (perhaps a dead master's, for its whole time-out):
                    # this call sends the batch instead, the other's part in it.
                    lane.next.lead = False
                    lane.queue.appendleft(lane.next)
                    part.lead = True
                    lane.next = part
                else:
                    lane.queue.append(part)
        started = time.monotonic()
        if self._linger_s and any(part.lead for part in call.parts):
            # It leads an idle lane: the calls that arrive while it lingers
            # queue behind it and go in its batch.
            self._sleep(self._linger_s)
        while True:
            with self._lock:
                mine = [part for part in call.parts if part.lead and not part.taken]
                if not mine:
                    if all(part.done for part in call.parts):
                        break
                    queued = any(not part.taken for part in call.parts)
                    call.wake.clear()  # (under the lock: no wake-up is lost)
                # Taken as the call turns busy, in one step: a call is busy only
                # with batches it has taken, so a lane it merely leads next can
                # be taken over (see above) but never one it is sending.
                batches = self._take(mine)
                call.busy = bool(batches)
            if mine:
                try:
                    self._lead(batches)
                finally:
                    with self._lock:
                        call.busy = False
                continue
            left = None if wait_s is None else max(0.0, started + wait_s * (1 if queued else 2) - time.monotonic())
            if not call.wake.wait(left):
                self._give_up(call, math.inf if wait_s is None else started + 2 * wait_s)
        return {part.lane: part.result() for part in call.parts}

    def _give_up(self, call: _Call, cap: float) -> None:
        """Withdraw a call that waited too long, unless it was just handed a
        lane, or all its parts are in flight and the cap (``time.monotonic``)
        is not reached: then it waits on."""
        with self._lock:
            if any(part.lead and not part.taken for part in call.parts):
                return  # others wait for it to send: it must
            queued = [part for part in call.parts if not part.taken]
            if not queued and time.monotonic() < cap:
                return
            for part in queued:
                self._lanes[part.lane].queue.remove(part)
        raise StorageError("redis busy: no round trip within the budget")

    def _take(self, mine: list[Part]) -> list[_Batch]:
        """The batch of every lane ``mine`` leads, its queue in it (under the lock)."""
        batches: list[_Batch] = []
        for part in mine:
            lane = self._lanes[part.lane]
            lane.next = None
            queue = lane.queue
            parts = [part]
            while queue and len(parts) < self._max_batch:
                parts.append(queue.popleft())
            for member in parts:
                member.taken = True
            batches.append(_Batch(self, part.lane, parts))
        return batches

    def _lead(self, batches: list[_Batch]) -> None:
        """Send the batches taken, then read them all."""
        started: list[tuple[_Batch, H]] = []
        try:
            for batch in batches:
                try:
                    started.append((batch, self._start(batch.lane, batch.parts)))
                except BaseException as exc:  # every waiter must be answered, whatever happened
                    batch.finish(exc)
                    if not isinstance(exc, Exception):
                        raise
            for batch, handle in started:
                failure: BaseException | None = None
                try:
                    self._complete(handle, batch.release)
                except BaseException as exc:  # as above
                    failure = exc
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    batch.finish(failure)
        finally:
            # A batch not yet answered (an interrupt above) must still be.
            for batch in batches:
                batch.finish(StorageError("redis batch interrupted"))

    def _hand_on(self, lane_key: Hashable) -> None:
        """The lane's next batch may go: hand it to a queued call, if any."""
        with self._lock:
            lane = self._lanes[lane_key]
            if lane.queue:
                # The next batch goes with a waiting call: one busy reading
                # another lane's replies would make this lane wait as long.
                nxt = next((part for part in lane.queue if not part.call.busy), lane.queue[0])
                lane.queue.remove(nxt)  # it sends the rest of the queue with its own
                nxt.lead = True
                lane.next = nxt
                nxt.call.wake.set()
            else:
                lane.leading = False
                lane.next = None

    def _answer(self, parts: list[Part], failure: BaseException | None) -> None:
        """Set the failure on every unanswered part, and wake every part's call."""
        if failure is not None:
            error = failure if isinstance(failure, StorageError) else StorageError(f"redis batch failed: {failure}")
            for part in parts:
                if not part.answered:
                    part.error = error
        with self._lock:
            self.batches += 1
            self.parts += len(parts)
            for part in parts:
                part.done = True
                part.call.wake.set()


class _Batch:
    """One lane's batch: hands the lane on once (when its sender says the
    next batch may go, or when it is answered) and is answered once."""

    __slots__ = ("_answered", "_commit", "_released", "lane", "parts")

    def __init__(self, commit: GroupCommit[Any], lane: Hashable, parts: list[Part]) -> None:
        self._commit, self.lane, self.parts = commit, lane, parts
        self._released = self._answered = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._commit._hand_on(self.lane)

    def finish(self, failure: BaseException | None) -> None:
        if not self._answered:
            self._answered = True
            self.release()
            self._commit._answer(self.parts, failure)
