"""The signal consumer: reads the share-event stream in a consumer group,
feeds the signal engine, and writes the values it publishes.

One consumer holds the engine's state in memory. On start it rebuilds that
state by re-reading the stream's recent window, re-writes what the engine
publishes (so Redis agrees with it), then follows the stream from there with
XREADGROUP in batches, acknowledging each batch once its writes are applied.
A batch's writes go in one pipeline: a hash field set (or deleted) and the
hash's expiry, per write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, cast

import redis

from riskservice.limits.keys import EVENTS
from riskservice.signals.engine import SignalEngine, Write

__all__ = ["GROUP", "SignalConsumer", "apply_writes"]

GROUP = "signals"
log = logging.getLogger("riskservice.signals")

Entry = tuple[bytes, dict[bytes, bytes]]


def apply_writes(client: redis.Redis, writes: Iterable[Write], ttl_ms: int) -> int:
    """Apply ``writes`` in one pipeline; the number of writes sent.

    Each touched hash expires ``ttl_ms`` after its last write, so a device
    that went quiet leaves nothing behind.
    """
    pipe = client.pipeline(transaction=False)
    n = 0
    for key, field, value in writes:
        if value is None:
            pipe.hdel(key, field)
        else:
            pipe.hset(key, field, value)
            pipe.pexpire(key, ttl_ms)
        n += 1
    if n:
        pipe.execute()
    return n


def _decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in fields.items()}


class SignalConsumer:
    """Follows ``stream`` for one :class:`SignalEngine`.

    Parameters
    ----------
    client : redis.Redis
        Where the stream is and the values go.
    engine : SignalEngine, optional
        A fresh one by default.
    stream, group, name : str
        The stream, the consumer group and this consumer's name in it.
    batch : int
        Entries read per call.
    """

    def __init__(self, client: redis.Redis, engine: SignalEngine | None = None, *, stream: str = EVENTS,
                 group: str = GROUP, name: str = "signals-1", batch: int = 1000) -> None:
        self.client = client
        self.engine = engine or SignalEngine()
        self.stream, self.group, self.name, self.batch = stream, group, name, batch
        self.ttl_ms = self.engine.config.window_ms
        self.writes = 0
        self.stopping = threading.Event()

    def start(self, now_ms: int | None = None) -> int:
        """Rebuild the state from the stream's window before ``now_ms`` (the
        Redis clock by default), re-write what it publishes, and place the
        group after what was read. Returns the entries re-read."""
        if now_ms is None:
            seconds, micros = self.client.time()
            now_ms = seconds * 1000 + micros // 1000
        start, last, count = f"{max(now_ms - self.engine.config.window_ms, 0)}-0", "0-0", 0
        final: dict[tuple[str, str], str | None] = {}
        while True:
            entries = cast(list[Entry], self.client.xrange(self.stream, start, "+", count=self.batch))
            for entry_id, fields in entries:
                for w in self.engine.observe(_decode(fields)):
                    final[(w.key, w.field)] = w.value
                last = entry_id.decode()
            count += len(entries)
            if len(entries) < self.batch:
                break
            start = "(" + last
        self.writes += apply_writes(self.client, (Write(k, f, v) for (k, f), v in final.items()), self.ttl_ms)
        # After the last entry read; nothing read: from now on.
        position = last if count else "$"
        try:
            self.client.xgroup_create(self.stream, self.group, id=position, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            self.client.xgroup_setid(self.stream, self.group, id=position)
        log.info("signal state rebuilt", extra={"entries": count, "last": last})
        return count

    def poll(self, block_ms: int | None = None) -> int:
        """Read, judge and acknowledge one batch of new entries; how many."""
        reply = self.client.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.batch,
                                       block=block_ms)
        if not reply:
            return 0
        entries = cast(list[Entry], cast(list[Any], reply)[0][1])  # (RESP2: [[stream, entries]])
        writes: list[Write] = []
        for _, fields in entries:
            writes += self.engine.observe(_decode(fields))
        self.writes += apply_writes(self.client, writes, self.ttl_ms)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def run(self, block_ms: int = 200, alive: Callable[[], bool] | None = None) -> None:
        """Follow the stream until :meth:`stop` (or until ``alive()`` is false);
        a Redis error is logged and retried."""
        while not self.stopping.is_set() and (alive is None or alive()):
            try:
                self.poll(block_ms)
            except redis.RedisError as exc:
                log.warning("signal consumer: redis error, retrying", extra={"error": str(exc)})
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
