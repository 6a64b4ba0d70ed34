"""Redis storage of the limiter: one atomic script per decision, outcome or
challenge result (``lua/``), and bans. Decisions go to the native decide
(``RISK.DECIDE``, :mod:`riskservice.limits.native`) instead of decide.lua
when the server has it.

Driver errors and time-outs are wrapped in one :class:`StorageError`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple, NoReturn, cast

import hiredis
import redis
from redis.connection import Connection

from riskservice.errors import StorageError
from riskservice.limits.client import CircuitBreaker
from riskservice.limits.contract import DecideArgs
from riskservice.limits.group_commit import GroupCommit, Part
from riskservice.limits.keys import DecisionKeys, ban_key, challenge_keys, device_prefix
from riskservice.limits.native import COMMANDS, NativeMode
from riskservice.limits.native.path import NativePath, is_lua_only, is_unknown_command, modules_on
from riskservice.limits.outage import MissedShare
from riskservice.limits.records import DecisionRecord, RecordLocation, find_record
from riskservice.limits.scripts import CHALLENGE, DECIDE, OUTCOME, RECONCILE, REWARD, Script

# REWARD: the reward script, for riskservice.rewards.
__all__ = ["MAX_IDLE", "OFFSET_RTT_S", "REWARD", "WARM_CONNECTIONS", "RedisStore", "load_missing"]

log = logging.getLogger("riskservice.store")

# The scripts this store runs (loaded before a worker serves).
SCRIPTS = (DECIDE, OUTCOME, CHALLENGE, RECONCILE, REWARD)


# Idle hot-path connections a process keeps (more are opened under load, and
# closed after use).
MAX_IDLE = 64

# Clock samples taken over a slower round trip than this are not trusted.
OFFSET_RTT_S = 0.002

# Connections a worker opens before it serves (per master on a cluster): a
# batch in flight and the next one (the group commit keeps one per server
# busy at a time, two while a WAIT is read).
WARM_CONNECTIONS = 2


# The one server's lane in the group commit.
LANE = "redis"


def load_missing(conn: Connection, scripts: Sequence[Script]) -> None:
    """Load on ``conn``'s server those of ``scripts`` it does not have (``SCRIPT EXISTS``, then a ``LOAD`` each)."""
    conn.send_command("SCRIPT", "EXISTS", *(script.sha for script in scripts))  # type: ignore[no-untyped-call]
    known = conn.read_response()
    for script, have in zip(scripts, known, strict=True):
        if not have:
            conn.send_command("SCRIPT", "LOAD", script.source)  # type: ignore[no-untyped-call]
            conn.read_response()


class _Call(NamedTuple):
    """A call's payload in the group commit: the command as sent, its script
    (loaded on NOSCRIPT), and for a native module's command its keys and
    arguments, to be sent again as ``EVALSHA`` if the server lacks the
    command (or the call is one only the script makes)."""

    packed: bytes
    script: Script
    lua: tuple[Sequence[str], tuple[object, ...]] | None = None

    def as_lua(self) -> _Call:
        assert self.lua is not None
        keys, args = self.lua
        return _Call(hiredis.pack_command(("EVALSHA", self.script.sha, len(keys), *keys, *args)),  # type: ignore[arg-type]
                     self.script)


class _Batch(NamedTuple):
    """A batch written and not yet read: its connection and its calls."""

    conn: Connection
    parts: Sequence[Part]


class RedisStore:
    """The limiter's Redis storage.

    Parameters
    ----------
    client : redis.Redis
        Built by :func:`riskservice.limits.client.connect`, with the time budget.
    breaker_cooldown_ms : int
        How long to skip Redis after a failure.
    native : {"auto", "on", "off"}
        ``RISK_REDIS_NATIVE``: send decisions as ``RISK.DECIDE`` when the
        server has the module at its version (``on``: and refuse to start
        on a Redis that answers without it; ``off``: never).

    Raises
    ------
    NativeUnavailable
        With ``native="on"``, when Redis answers without the module.
    """

    def __init__(self, client: redis.Redis, breaker_cooldown_ms: int = 1000, budget_ms: int | None = None,
                 wait_replicas: int = 0, native: NativeMode = "auto", linger_us: int = 0) -> None:
        self.client = client
        self.native = NativePath(native)
        if native != "off":
            self._detect_native()
            self.native.require()
        # Durability (RISK_REDIS_WAIT_REPLICAS): each decision waits, in the
        # same round trip, until this many replicas have it, for at most a
        # quarter of the budget; decisions that were not acknowledged in time
        # are still answered and counted here.
        self.wait_replicas = wait_replicas
        self.wait_ms = max(1, (budget_ms or 200) // 4)
        self.unreplicated = 0
        self._breaker = CircuitBreaker(breaker_cooldown_ms)
        self.budget_ms = budget_ms
        # Redis server time minus ours (ms), re-measured every second, so a
        # deadline can be given on the server's clock.
        self._offset_ms: float | None = None
        self._offset_at = -1.0
        # Idle connections of the hot path, most recently used last, and the
        # process that made them (a forked child makes its own).
        self._idle: list[Connection] = []
        self._idle_pid = os.getpid()
        # Concurrent calls share round trips (group_commit.py). A call waits
        # in the queue for at most half the budget: the other half is its
        # own round trip's (the socket time-out).
        self._linger_s = linger_us / 1e6
        self._commit = self._new_commit()
        self._queue_wait_s = None if budget_ms is None else budget_ms / 2000

    def _take(self) -> Connection:
        """An idle connection for one script call (a new one when none is idle).

        The hot path talks to a redis-py connection directly rather than
        through the client: the client's pool and instrumentation cost about
        35 us of CPU per call, more than the script itself. A stack of idle
        connections (not one per thread) serves thread and gevent workers
        alike: a greenlet per request would otherwise open a connection per
        request. Same timeouts (the pool's connection settings).

        No lock: ``list.pop`` and ``list.append`` are atomic in CPython, and
        under gevent a lock is a cooperative semaphore entered through Python
        code, twice per decision for nothing (greenlets never switch here).
        """
        try:
            return self._idle.pop()
        except IndexError:
            conn = cast(Connection, self.client.connection_pool.make_connection())
            if self.native.mode != "off":
                # Every (re)connection may meet another server (a restart, a
                # promoted replica): it looks for the module first.
                conn.register_connect_callback(self._on_connect)  # type: ignore[no-untyped-call]
            return conn

    def _detect_native(self, client: redis.Redis | None = None) -> None:
        """``MODULE LIST`` at start-up, through ``client`` if given (a Redis
        that does not answer now is looked at again by the first connection
        that reaches it)."""
        try:
            modules = (client or self.client).execute_command("MODULE", "LIST")  # type: ignore[no-untyped-call]
        except redis.ResponseError:
            modules = None  # MODULE refused (managed services): no module
        except (redis.RedisError, OSError):
            return
        self.native.observe(modules)

    def native_status(self, look: bool = True, probe: redis.Redis | None = None) -> dict[str, object]:
        """For ``/readyz``: looks for the module again (a probe is rare, and a
        worker that has made no decision since a failover would otherwise
        report the old server's path), through ``probe`` if given, then
        which path decisions take. ``look=False``: the last path seen (Redis
        did not answer the probe: asking again would only wait out the
        time-out)."""
        if look and self.native.mode != "off":
            self._detect_native(probe)
        return self.native.status()

    def _on_connect(self, conn: Connection) -> None:
        """Detect the module on a connection just (re)connected."""
        self.native.observe(modules_on(conn))

    def _give_back(self, conn: Connection) -> None:
        """Keep ``conn`` for reuse, up to :data:`MAX_IDLE` (two threads may
        both pass the check: a connection or two more is harmless). A
        connection that failed was disconnected and reconnects on its next
        use, so it can go back too."""
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.disconnect()  # type: ignore[no-untyped-call]

    def warm_up(self, connections: int = WARM_CONNECTIONS) -> list[str]:
        """Before a worker serves (gunicorn's ``post_worker_init``): open
        ``connections`` connections for the hot path (each has looked for
        the module on connecting), load the scripts Redis lacks and read its
        clock, rather than in the first decisions' budget. Returns ``["redis"]``
        when Redis did not answer (logged; the first decisions then connect
        or are degraded), else nothing."""
        conns = [self._take() for _ in range(connections)]
        try:
            for conn in conns:
                conn.connect()  # type: ignore[no-untyped-call]
            load_missing(conns[0], SCRIPTS)
        except (redis.RedisError, OSError) as exc:
            for conn in conns:
                conn.disconnect()  # type: ignore[no-untyped-call]
            log.warning("cannot warm up the connections to redis", extra={"error": str(exc)})
            return [LANE]
        finally:
            for conn in conns:
                self._give_back(conn)
        self.deadline_ms()
        return []

    def close(self) -> None:
        """Close every idle connection (at shutdown)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()  # type: ignore[no-untyped-call]
        self.client.close()

    def run(self, script: Script, keys: tuple[str, ...] | list[str], args: tuple[object, ...]) -> Any:
        """The script in the next round trip of the group commit: as the native
        module's command when the server has it and it does this script
        (:data:`~riskservice.limits.native.COMMANDS`), else ``EVALSHA``
        (loading the script if Redis lacks it)."""
        if not self._breaker.allow():
            raise StorageError("redis unavailable (circuit open)")
        # Packed by hiredis directly: redis-py's serializer re-checks every
        # one of the ~30 arguments in Python first.
        command = COMMANDS.get(script.name) if self.native.active else None
        if command is not None:
            return self._submit(_Call(hiredis.pack_command((command, len(keys), *keys, *args)), script, (keys, args)))
        return self._submit(_Call(hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args)), script))

    def _submit(self, call: _Call) -> Any:
        """Send ``call`` in the next round trip of the group commit; its reply."""
        if self._idle_pid != os.getpid():
            # A forked child: the parent's sockets are not ours, nor its queue
            # (a batch in flight at the fork would never be answered here).
            self._idle, self._idle_pid = [], os.getpid()
            self._commit = self._new_commit()
        return self._commit.submit({LANE: call}, self._queue_wait_s)[LANE]

    def _new_commit(self) -> GroupCommit[_Batch]:
        """This process's group commit over the one server."""
        return GroupCommit(self._send, self._receive, linger_s=self._linger_s)

    def _send(self, lane: Hashable, parts: Sequence[Part]) -> _Batch:
        """Write a batch of calls (the group commit's ``start``)."""
        conn = self._take()
        try:
            try:
                self._write(conn, parts)
            except redis.ConnectionError:
                # A connection Redis dropped (it restarted, or closed an idle
                # client) fails at once: one retry on a fresh one.
                conn.disconnect()  # type: ignore[no-untyped-call]
                self._write(conn, parts)
        except (redis.RedisError, OSError) as exc:
            self._lost(conn, exc)
        return _Batch(conn, parts)

    def _receive(self, batch: _Batch, release: Callable[[], None]) -> None:
        """Read a batch's replies into its calls (the group commit's ``complete``)."""
        conn = batch.conn
        try:
            try:
                waiting = self._read(conn, batch.parts)
            except redis.ConnectionError:
                # As in _send; the calls not yet answered are sent again. Safe
                # to repeat: every script is idempotent by its record.
                # Time-outs are not retried: they already spent the budget.
                conn.disconnect()  # type: ignore[no-untyped-call]
                unanswered = [part for part in batch.parts if not part.answered]
                self._write(conn, unanswered)
                waiting = self._read(conn, unanswered)
        except (redis.RedisError, OSError) as exc:
            self._lost(conn, exc)
        if waiting:
            # The scripts have answered: the next batch may go on another
            # connection while this one waits for the replicas.
            release()
            self._read_wait(conn, len(batch.parts))
        self._give_back(conn)
        self._breaker.success()

    def _read_wait(self, conn: Connection, calls: int) -> None:
        """Read a batch's ``WAIT`` reply; its ``calls`` count as unreplicated
        unless it says enough replicas have them.

        A ``WAIT`` that reaches its time-out is answered late: Redis 6.2
        checks blocked clients' time-outs when its event loop wakes, which
        with nothing else to do is at the next ``serverCron`` tick (every
        1000/hz = 100 ms), so ``WAIT 1 100`` is answered 100 to about 205 ms
        after it arrived: sometimes past this socket's time-out (half the
        budget, 200 ms for 400 ms), and nearly always with the default 50 ms
        budget (a 12 ms ``WAIT``, a 25 ms socket time-out). No reply in time,
        or none at all, is no acknowledgement: the calls count as
        unreplicated (their answers stand, the scripts ran). The socket may
        still receive the late reply, so it is closed (it reconnects on its
        next use); the breaker is left alone, since Redis answered the
        scripts and only a replica is missing (were it opened, a dead replica
        would degrade every answer for the cool-down).
        """
        try:
            acked = int(conn.read_response())
        except (redis.RedisError, OSError):
            conn.disconnect()  # type: ignore[no-untyped-call]
            acked = 0
        if acked < self.wait_replicas:
            self.unreplicated += calls

    def _lost(self, conn: Connection, exc: Exception) -> NoReturn:
        """A failed batch: its replies may still arrive, so the socket is never reused."""
        conn.disconnect()  # type: ignore[no-untyped-call]
        self._give_back(conn)  # (it reconnects on its next use)
        self._breaker.failure()
        raise StorageError(f"redis script failed: {exc}") from exc

    def _write(self, conn: Connection, parts: Sequence[Part]) -> None:
        payload = b"".join(part.payload.packed for part in parts)
        if self.wait_replicas:
            # One WAIT right behind the batch covers every write before it.
            payload += hiredis.pack_command(("WAIT", self.wait_replicas, self.wait_ms))  # type: ignore[arg-type]
        conn.send_packed_command([payload], check_health=False)  # type: ignore[no-untyped-call]

    def _read(self, conn: Connection, parts: Sequence[Part], loaded: bool = False) -> bool:
        """Read the scripts' replies of a write; True when its ``WAIT`` reply is left to read."""
        unloaded = []
        for part in parts:
            try:
                part.reply = conn.read_response()
            except redis.exceptions.NoScriptError:
                unloaded.append(part)
            except redis.exceptions.ResponseError as exc:  # this script's own error; the rest are fine
                if part.payload.lua is not None and (is_unknown_command(exc) or is_lua_only(exc)):
                    # A server without the module (a replica promoted, a
                    # restart without loadmodule), or a call only the script
                    # makes: it goes again, as EVALSHA, with the scripts'
                    # NOSCRIPT handling below.
                    if is_unknown_command(exc):
                        self.native.unknown_command()
                    part.payload = part.payload.as_lua()
                    unloaded.append(part)
                    continue
                self._breaker.failure()
                part.error = StorageError(f"redis script failed: {exc}")
        if not unloaded:
            return bool(self.wait_replicas)
        if loaded:
            raise StorageError("redis lost the scripts it was just sent")
        if self.wait_replicas:
            # The WAIT behind scripts that did not run is worth nothing, and
            # its reply may come after the socket's time-out (see _read_wait):
            # drop the connection rather than wait for it (it reconnects below).
            conn.disconnect()  # type: ignore[no-untyped-call]
        # A restarted or new Redis: load the scripts once, then carry on.
        for script in {part.payload.script.sha: part.payload.script for part in unloaded}.values():
            conn.send_command("SCRIPT", "LOAD", script.source)  # type: ignore[no-untyped-call]
            conn.read_response()
        self._write(conn, unloaded)
        return self._read(conn, unloaded, loaded=True)

    def take_unreplicated(self) -> int:
        """Calls whose writes not enough replicas acknowledged in time, since the last call (for a counter)."""
        count, self.unreplicated = self.unreplicated, 0
        return count

    def deadline_ms(self) -> int | str:
        """When a call sent now stops being worth running, on the Redis
        server's clock: now plus the budget ("" while the offset is unknown).

        The caller gives up within the budget; a script still queued in Redis
        after that must change nothing, or the record would contradict the
        degraded answer the caller got.
        """
        if self.budget_ms is None:
            return ""
        now = time.monotonic()
        if now - self._offset_at > 1.0:
            self._offset_at = now
            try:
                before = time.time()
                seconds, micros = self.client.time()
                after = time.time()
                # A sample whose round trip was slow (this thread waited for the
                # CPU) can be off by half of it, which makes deadlines early and
                # answers degraded: keep the last good one instead.
                if self._offset_ms is None or after - before < OFFSET_RTT_S:
                    self._offset_ms = (seconds * 1000 + micros / 1000) - (before + after) * 500
            except redis.RedisError:
                pass  # keep the last estimate; the call itself will fail or not
        if self._offset_ms is None:
            return ""
        return int(time.time() * 1000 + self._offset_ms + self.budget_ms)

    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        """Judge, record and log one decision atomically (see ``lua/decide.lua``)."""
        if args.deadline == "" and self.budget_ms is not None:
            args = args._replace(deadline=self.deadline_ms())
        static = args.record_static()
        # (RISK.DECIDE, where the server has it, takes decide.lua's KEYS and ARGV and answers the same.)
        reply = self.run(DECIDE, keys, args.wire(static.pack()))
        if isinstance(reply, bytes):  # a new decision: the script's part of the record
            return DecisionRecord.new(reply, static)
        status, stored = reply
        if status == b"late":
            raise StorageError("the decision reached Redis after its deadline; nothing was recorded")
        return DecisionRecord.from_reply(status.decode(), stored)

    def server_now_ms(self) -> int:
        """Our best estimate of the Redis server's clock (ms)."""
        return int(time.time() * 1000 + (self._offset_ms or 0.0))

    def reconcile(self, shares: list[MissedShare]) -> None:
        """Count shares allowed during an outage (``lua/reconcile.lua``), in one round trip."""
        if not self._breaker.allow():
            raise StorageError("redis unavailable (circuit open)")
        try:
            self.client.script_load(RECONCILE.source)
            pipe = self.client.pipeline(transaction=False)
            for share in shares:
                pipe.evalsha(RECONCILE.sha, len(share.keys), *share.keys, *share.args.wire())
            pipe.execute()
        except redis.RedisError as exc:
            self._breaker.failure()
            raise StorageError(f"cannot reconcile shares allowed during the outage: {exc}") from exc

    def resolve(self, decision_id: str) -> RecordLocation | None:
        """Where a decision's record is, from the key its id names (one ``GET``);
        None for an id that names no record of its own."""
        if not self._breaker.allow():
            raise StorageError("redis unavailable (circuit open)")
        return find_record(decision_id, self._get_string)

    def _get_string(self, key: str) -> bytes | None:
        """``GET key``; None when missing or of another type (a record of an older release was a hash)."""
        try:
            return cast(bytes | None, self.client.get(key))
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                return None
            raise StorageError(f"cannot read the decision record: {exc}") from exc
        except redis.RedisError as exc:
            self._breaker.failure()
            raise StorageError(f"cannot read the decision record: {exc}") from exc

    def outcome(self, record_key: str, *, delivered: int, opened: int, claimed: int, window_ms: int, cap: int,
                now_ms: int | None, retention_ms: int, events: str) -> tuple[str, dict[str, Any] | None]:
        """Record a share's outcome (see ``lua/outcome.lua``); returns (status, record)."""
        keys = (record_key, f"{device_prefix(record_key)}:outcomes", events)
        args = ("" if now_ms is None else now_ms, delivered, opened, claimed, window_ms, cap, retention_ms)
        status, flat = self.run(OUTCOME, keys, args)
        return status.decode(), DecisionRecord.parse(flat)

    def challenge(self, record_key: str, user_log_key: str, *, passed: bool, kind: str, plan: bytes,
                  now_ms: int | None, retention_ms: int, events: str) -> tuple[str, dict[str, Any] | None, bool]:
        """Record a challenge result (see ``lua/challenge.lua``); returns (status, record, cooled down)."""
        keys = challenge_keys(record_key, user_log_key, events)
        args = ("" if now_ms is None else now_ms, int(passed), kind, plan, retention_ms)
        status, flat, cooled = self.run(CHALLENGE, keys, args)
        return status.decode(), DecisionRecord.parse(flat), bool(cooled)

    def ping(self, probe: redis.Redis | None = None) -> bool:
        """True when Redis answers now (ignores the breaker: readiness must probe).

        ``probe``: a client of the same Redis to ask instead of the store's
        own (``/readyz`` passes one with short time-outs,
        :func:`riskservice.limits.topology.probe_client`); an answer closes
        the breaker either way.
        """
        try:
            ok = bool((probe or self.client).ping())
        except (redis.RedisError, OSError):
            return False
        self._breaker.success()
        return ok

    def set_ban(self, kind: str, entity_id: str, *, reason: str, actor: str, until_ms: int = 0) -> None:
        """Ban a device, user or ip (``until_ms`` 0: until lifted)."""
        key = ban_key(kind, entity_id)
        fields: dict[str, str | int] = {"reason": reason, "actor": actor, "at": int(time.time() * 1000),
                                        "until": until_ms}
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]  # (Mapping is invariant in its key)
            if until_ms:
                # The script judges `until` itself; expiry only collects the key,
                # a day late so that no clock skew can lift a ban early.
                pipe.pexpireat(key, until_ms + 86_400_000)
            pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"cannot write ban: {exc}") from exc

    def clear_ban(self, kind: str, entity_id: str) -> bool:
        """Lift a ban; True if there was one."""
        try:
            return bool(self.client.delete(ban_key(kind, entity_id)))
        except redis.RedisError as exc:
            raise StorageError(f"cannot clear ban: {exc}") from exc

    def get_ban(self, kind: str, entity_id: str) -> dict[str, str] | None:
        try:
            raw = self.client.hgetall(ban_key(kind, entity_id))
        except redis.RedisError as exc:
            raise StorageError(f"cannot read ban: {exc}") from exc
        return {bytes(k).decode(): bytes(v).decode() for k, v in cast(dict[bytes, bytes], raw).items()} or None
