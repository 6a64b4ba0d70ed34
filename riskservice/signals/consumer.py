"""The signal consumer: reads the share-event stream in a consumer group,
feeds the signal engine, and writes the values it publishes.

One consumer holds the engine's state in memory. On start it rebuilds that
state by re-reading the stream's recent window, re-writes what the engine
publishes (so Redis agrees with it), then follows the stream from there in
batches (``XREADGROUP ... NOACK``: the group only keeps the position; what
was read but not applied when the consumer stopped is read again by the
next start's rebuild, not from a pending list).

On Redis Cluster the stream is one shard per slot (riskservice/signals/shards.py
finds and reads them): the rebuild merges every shard by stream id, and
each round's new entries are merged by stream id too. Ordering given: the
entries a round reads are fed in stream-id order, and entries past the last
one read from a shard with more waiting (it returned a whole batch) are
held back until that shard is read further, so a backlog is fed in the
order the masters recorded it. An entry a round did not see (recorded on a
quiet shard between two looks at it, or on a master that was away) comes
in a later round, after entries with larger ids. Each shard's own order is
always kept, and an entry is fed once per start: a re-delivered one (a
promoted replica whose group position lagged) is skipped by its id.

Writes are grouped by the master serving each device's ``:sig`` hash, one
pipeline per master; the writes of a master that fails wait (the latest
value of each field) and are sent again, a second later, until it answers.

It beats (riskservice/signals/heartbeat.py) when its rebuild begins and then
at most once a second, saying how far behind the stream it is; ``/readyz``
and ``/metrics`` report it. With a :class:`~riskservice.signals.lease.Lease`
it works only while it holds it (one consumer per service, however many
servers start one): it checks it before each round and during its rebuild,
and raises :class:`~riskservice.signals.lease.LeaseLost` when it is gone.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import cast

import redis

from riskservice.limits.keys import EVENTS
from riskservice.signals.engine import SignalEngine, Write
from riskservice.signals.heartbeat import Heartbeat
from riskservice.signals.lease import Lease
from riskservice.signals.shards import ShardSet
from riskservice.signals.wire import AWAY, Entry, entries_of, moved, packed, raise_reply

__all__ = ["GROUP", "SignalConsumer"]

GROUP = "signals"
log = logging.getLogger("riskservice.signals")
# The largest sequence number of a stream id.
MAX_SEQ = 2**64 - 1


class SignalConsumer:
    """Follows ``stream`` (every shard of it on a cluster) for one :class:`SignalEngine`.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        Where the stream is and the values go.
    engine : SignalEngine, optional
        A fresh one by default.
    stream, group, name : str
        The stream (the base of the shards on a cluster), the consumer group
        and this consumer's name in it.
    batch : int
        Entries read per call (per shard on a cluster).
    discover_s : float
        Least time between two looks for new shards (cluster only).
    heartbeat : Heartbeat, optional
        Its beats (one on ``client`` under ``name`` by default).
    lease : Lease, optional
        The lease it must hold to work (none: it works alone, as in tests).
    stopping : threading.Event, optional
        Set to stop it (:meth:`stop` sets it); one of its own by default.
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, engine: SignalEngine | None = None, *,
                 stream: str = EVENTS, group: str = GROUP, name: str = "signals-1", batch: int = 1000,
                 discover_s: float = 1.0, heartbeat: Heartbeat | None = None, lease: Lease | None = None,
                 stopping: threading.Event | None = None) -> None:
        self.client = client
        self.lease = lease
        self.heartbeat = heartbeat or Heartbeat(client, name)
        self.engine = engine or SignalEngine()
        self.stream, self.group, self.name, self.batch = stream, group, name, batch
        self.shards = ShardSet(client, group, name, stream, discover_s)
        self.ttl_ms = self.engine.config.window_ms
        self.writes = 0
        self.duplicates = 0
        self.stopping = stopping or threading.Event()
        # Last id fed per shard (a re-delivered entry is skipped), entries read
        # but not fed yet (past another shard's batch), writes not sent yet.
        self.last: dict[str, tuple[int, int]] = {}
        self.held: list[Entry] = []
        self.pending: dict[tuple[str, str], str | None] = {}
        self.backlog = False

    # -- start: rebuild from every shard -------------------------------------

    def start(self, now_ms: int | None = None) -> int:
        """Rebuild the state from the stream's window before ``now_ms`` (the
        Redis clock by default), re-write what it publishes, and place the
        group of every shard after what was read. Returns the entries re-read.

        Every master must answer (it waits, retrying each second, until they
        do or :meth:`stop` is called).
        """
        while True:
            try:
                return self._start(now_ms)
            except AWAY as exc:
                if self.stopping.is_set():
                    raise
                log.warning("signal consumer: cannot rebuild yet, retrying", extra={"error": str(exc)})
                self.shards.remap()
                self.stopping.wait(1.0)

    def _start(self, now_ms: int | None) -> int:
        self.heartbeat.rebuilding()
        if now_ms is None:
            node = next(iter(self.shards.nodes().values()))[0]
            seconds, micros = node.time()
            now_ms = seconds * 1000 + micros // 1000
        start_ms = max(now_ms - self.engine.config.window_ms, 0)
        self.shards.discover(force=True)
        self.engine = SignalEngine(self.engine.config, self.engine.floors) if self.engine.entries else self.engine
        self.last, self.held, count = {}, [], 0
        final: dict[tuple[str, str], str | None] = {}
        for entry in heapq.merge(*self._window(start_ms)):
            for w in self.engine.observe(entry.fields):
                final[(w.key, w.field)] = w.value
            self.last[entry.shard] = entry.order
            count += 1
            if self.lease is not None and count % 1000 == 0:
                self.lease.check()  # a rebuild can outlast the lease: renew it as it goes
        if self.lease is not None:
            # The group's position is shared: only the holder may place it.
            self.lease.check()
        self.write(Write(k, f, v) for (k, f), v in final.items())
        # After the last entry read; nothing read: just before the window
        # (not "$", which would skip what was added since the read).
        before = f"{start_ms - 1}-{MAX_SEQ}" if start_ms else "0-0"
        positions = {s: "{}-{}".format(*self.last[s]) if s in self.last else before
                     for s in self.shards.followed.values()}
        self.shards.place_groups(positions, mkstream=not self.shards.cluster)
        log.info("signal state rebuilt", extra={"entries": count, "shards": len(positions)})
        return count

    def _window(self, start_ms: int) -> list[Iterator[Entry]]:
        """One iterator per followed shard over its entries from ``start_ms``;
        the first batch of every shard is fetched in one round trip per master."""
        out = []
        for _, (node, shards) in self.shards.by_master().items():
            replies = packed(node, [("XRANGE", s, f"{start_ms}-0", "+", "COUNT", self.batch) for s in shards])
            for shard, reply in zip(shards, replies, strict=True):
                if isinstance(reply, Exception):
                    raise_reply(reply)
                out.append(self._rest(node, shard, entries_of(shard, reply)))
        return out

    def _rest(self, node: redis.Redis, shard: str, first: list[Entry]) -> Iterator[Entry]:
        batch = first
        while True:
            yield from batch
            if len(batch) < self.batch:
                return
            raw = node.xrange(shard, b"(" + batch[-1].id, "+", count=self.batch)
            batch = entries_of(shard, cast(list[tuple[bytes, dict[bytes, bytes]]], raw))

    # -- follow ----------------------------------------------------------------

    def poll(self, block_ms: int | None = None) -> int:
        """Read one round of new entries (every shard), feed those that are in
        order to the engine and send its writes; how many were fed."""
        if self.lease is not None:
            self.lease.check()
        found = self.shards.discover()
        if found:
            self.shards.join(found)
        entries, watermark = self.shards.read(self.batch, block_ms)
        for entry in entries:
            heapq.heappush(self.held, entry)
        ready = []
        while self.held and (watermark is None or self.held[0].order <= watermark):
            ready.append(heapq.heappop(self.held))
        # Entries are left to read (a shard returned a whole batch).
        self.backlog = watermark is not None
        writes: list[Write] = []
        fed = 0
        newest: int | None = None
        for entry in ready:
            if entry.order <= self.last.get(entry.shard, (-1, -1)):
                self.duplicates += 1
                continue
            self.last[entry.shard] = entry.order
            writes += self.engine.observe(entry.fields)
            fed += 1
            newest = entry.order[0] if newest is None else max(newest, entry.order[0])
        self.write(writes)
        self.heartbeat.polled(fed, newest, self.backlog)
        return fed

    def run(self, block_ms: int = 200, alive: Callable[[], bool] | None = None) -> None:
        """Follow the stream until :meth:`stop` (or until ``alive()`` is false).

        A single Redis blocks in the read for up to ``block_ms``. On a cluster
        a round costs one command per shard it reads, so rounds are spaced
        ``block_ms`` apart unless a shard had more than a batch waiting. A
        master that fails is skipped and retried, any other Redis error is
        logged and retried after a second.
        """
        while not self.stopping.is_set() and (alive is None or alive()):
            try:
                fed = self.poll(block_ms)
                if (self.shards.cluster and not self.backlog) or (
                        fed == 0 and (self.shards.down or self.pending)):
                    self.stopping.wait(block_ms / 1000)
            except redis.RedisError as exc:
                log.warning("signal consumer: redis error, retrying", extra={"error": str(exc)})
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()

    # -- writes ------------------------------------------------------------------

    def write(self, writes: Iterable[Write]) -> None:
        """Send ``writes`` and any that wait, one pipeline per master; each
        touched hash expires ``ttl_ms`` after its last write (a device that
        went quiet leaves nothing behind)."""
        for key, field, value in writes:
            self.pending[(key, field)] = value
        if not self.pending:
            return
        per_master: dict[str, tuple[redis.Redis, list[tuple[str, str]]]] = {}
        for key, field in self.pending:
            master, node = self.shards.node_of(key)
            per_master.setdefault(master, (node, []))[1].append((key, field))
        for master, (node, fields) in per_master.items():
            if self.shards.resting(master):
                continue
            pipe = node.pipeline(transaction=False)
            for key, field in fields:
                value = self.pending[(key, field)]
                if value is None:
                    pipe.hdel(key, field)
                else:
                    pipe.hset(key, field, value)
                    pipe.pexpire(key, self.ttl_ms)
            try:
                pipe.execute()
            except redis.RedisError as exc:
                if not moved(exc):
                    raise
                self.shards.failed(master, exc)
                continue
            for f in fields:
                del self.pending[f]
            self.writes += len(fields)
