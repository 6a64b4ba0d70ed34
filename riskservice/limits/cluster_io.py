"""Round trips to a Redis Cluster's masters within the decision budget.

The decision path talks to the masters' connections itself rather than
through redis-py's cluster client: it sends to two masters at once and then
reads both replies (two slots, one round trip of wall time), every call
fails within the budget, and a failure is never retried against a dead
node. Each master has its own circuit breaker, so a master that is down
degrades only the decisions whose slots it served; a failure makes the slot
map be read again (in the background, at most every ``REFRESH_S``), so
decisions use a promoted replica as soon as the cluster names it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, NamedTuple, NoReturn, cast

import hiredis
import redis
from redis.cluster import ClusterNode
from redis.connection import Connection

from riskservice.errors import StorageError
from riskservice.limits.client import CircuitBreaker
from riskservice.limits.group_commit import GroupCommit, Part
from riskservice.limits.native import COMMANDS, NativeMode
from riskservice.limits.native.path import NativeMasters, is_lua_only, is_unknown_command, modules_on
from riskservice.limits.scripts import CHALLENGE, DECIDE, OUTCOME, RECONCILE, REWARD, Script
from riskservice.limits.slots import SLOTS, key_slot, slot_tag
from riskservice.limits.store import OFFSET_RTT_S, WARM_CONNECTIONS, load_missing
from riskservice.limits.topology import masters, probe_client, slot_ranges

__all__ = ["RESERVE", "SETTLE", "ClusterIO", "Command"]

log = logging.getLogger("riskservice.cluster")

RESERVE, SETTLE = Script("reserve"), Script("settle")
SCRIPTS = (RESERVE, SETTLE, DECIDE, OUTCOME, CHALLENGE, RECONCILE, REWARD)
# Scripts the native module does as commands of its own, by SHA.
NATIVE_OF = {script.sha: COMMANDS[script.name] for script in (DECIDE, RESERVE, SETTLE, OUTCOME)}
# One command: its words, as hiredis packs them.
Command = tuple[Any, ...]
REFRESH_S = 0.25
# Idle connections kept per master (more are opened under load, and closed after use).
MAX_IDLE = 64


class _NodeCall(NamedTuple):
    """A call's groups of commands for one master."""

    node: ClusterNode
    groups: list[list[Command]]


class _NodeBatch(NamedTuple):
    """A batch written to a master and not yet read."""

    node: ClusterNode
    conn: Connection
    parts: Sequence[Part]
    shapes: list[list[tuple[int, bool]]]  # per call, per group: commands sent, and whether its WAIT was moved
    wait: bool  # one WAIT ends the batch
    payload: bytes  # as written (sent again once if a kept connection proves stale)
    reused: bool  # on a connection kept idle since an earlier batch (which the server may have closed)


class _ClosedBeforeAnswering(redis.ConnectionError):
    """The connection was closed or reset before the batch's first reply."""


class _ModuleWatch:
    """Detects the module on each connection (re)made to one master (redis-py
    keeps a connect callback as a weak method: the IO keeps these)."""

    def __init__(self, name: str, native: NativeMasters) -> None:
        self.name, self.native = name, native

    def on_connect(self, conn: Connection) -> None:
        self.native.observe(self.name, modules_on(conn))


class ClusterIO:
    """Connections, breakers and the slot map of the decision path on a cluster.

    Parameters
    ----------
    client : redis.RedisCluster
        From :func:`riskservice.limits.topology.connect_cluster`.
    breaker_cooldown_ms : int
        How long to skip a master after it failed.
    budget_ms : int, optional
        Each call's budget (the deadline given to the scripts).
    wait_replicas : int
        ``WAIT`` for this many replicas of the master that recorded a
        decision, in the same round trip (``RISK_REDIS_WAIT_REPLICAS``).
    native : {"auto", "on", "off"}
        ``RISK_REDIS_NATIVE``: each script the native module does goes to a
        master that has the module as the module's command (:class:`NativeMasters`).
    linger_us : int
        ``RISK_REDIS_LINGER_US``: a call that finds its master idle waits this
        long so that calls arriving meanwhile share its round trip
        (:mod:`riskservice.limits.group_commit`).
    """

    def __init__(self, client: redis.RedisCluster, breaker_cooldown_ms: int = 1000, budget_ms: int | None = None,
                 wait_replicas: int = 0, native: NativeMode = "auto", linger_us: int = 0) -> None:
        self.client = client
        self.budget_ms = budget_ms
        self.cooldown_ms = breaker_cooldown_ms
        self.wait_replicas = wait_replicas
        self.wait_ms = max(1, (budget_ms or 200) // 4)
        self.unreplicated = 0
        self._breakers: dict[str, CircuitBreaker] = {}
        self._offset_ms: float | None = None
        self._offset_at = -1.0
        self._refresh_lock = threading.Lock()
        self._refreshed_at = 0.0
        self._logged: dict[str, float] = {}
        # Master -> the slots it served when last seen (a dead master keeps its
        # entry, so the log can say which slots are down).
        self._served: dict[str, str] = {}
        self._note_served()
        self._slot_nodes = self._snapshot()
        self._idle: dict[str, list[Connection]] = {}
        self._idle_pid = os.getpid()
        self._idle_lock = threading.Lock()
        # Concurrent calls share round trips (group_commit.py); a queued call
        # waits at most half the budget, the other half is its round trip's.
        self._linger_s = linger_us / 1e6
        self._commit = self._new_commit()
        self._commit_pid = os.getpid()
        self._queue_wait_s = None if budget_ms is None else budget_ms / 2000
        self.native = NativeMasters(native)
        self._watches: dict[str, _ModuleWatch] = {}
        if native != "off":
            self._detect_native()
            self.native.require()

    def _new_commit(self) -> GroupCommit[_NodeBatch]:
        """Round trips shared per master; a call that finds its master idle lingers
        ``linger_us`` first (on each of a decision's two round trips)."""
        return GroupCommit(self._send, self._receive, linger_s=self._linger_s)

    # -- the native module, per master ---------------------------------------

    def _detect_native(self, skip: Collection[str] = (), timeout_s: float | None = None) -> None:
        """``MODULE LIST`` on every master (one that does not answer now, or
        is in ``skip``, is looked at again by the first connection that
        reaches it); ``timeout_s``: on a probe connection of its own with
        that time-out, not the client's."""
        names = set()
        for node in self.client.get_primaries():  # type: ignore[no-untyped-call]
            names.add(node.name)
            if node.name in skip:
                continue
            try:
                if timeout_s is None:
                    modules = self.client.get_redis_connection(node).execute_command("MODULE", "LIST")  # type: ignore[no-untyped-call]
                else:
                    with probe_client(self.client, timeout_s, node.host, node.port) as probe:
                        modules = probe.execute_command("MODULE", "LIST")
            except redis.ResponseError:
                modules = None  # MODULE refused (managed services): no module
            except (redis.RedisError, OSError):
                continue
            self.native.observe(node.name, modules)
        self.native.forget_others(names)

    def _watch(self, name: str) -> _ModuleWatch:
        watch = self._watches.get(name)
        if watch is None:
            watch = self._watches.setdefault(name, _ModuleWatch(name, self.native))
        return watch

    def native_status(self, skip: Collection[str] = (), timeout_s: float | None = None) -> dict[str, object]:
        """For ``/readyz``: looks again on every master but those in ``skip``
        (down: asking would only wait out the time-out), on probe
        connections when ``timeout_s`` is given, then which path each
        master's decisions take."""
        if self.native.mode != "off":
            self._detect_native(skip, timeout_s)
        return self.native.status()

    # -- the slot map -------------------------------------------------------

    def _snapshot(self) -> list[ClusterNode | None]:
        """Slot -> master, copied from the client's slot map. The hot path reads
        this copy: the client's own lookup takes a lock that re-reading the map
        holds for as long as a dead node takes to refuse."""
        cache = self.client.nodes_manager.slots_cache
        out: list[ClusterNode | None] = []
        for slot in range(SLOTS):
            nodes = cache.get(slot)
            out.append(nodes[0] if nodes else None)
        return out

    def node_of(self, key: str) -> ClusterNode:
        """The master of ``key``'s slot (StorageError when the map has none: degraded, never a 5xx)."""
        node = self._slot_nodes[key_slot(key)]
        if node is None:
            self.refresh_soon()
            raise StorageError(f"no master serves the slot of {key}")
        return node

    def _breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers.setdefault(name, CircuitBreaker(self.cooldown_ms))
        return breaker

    def _note_served(self) -> None:
        self._served.update({name: slot_ranges(slots) for name, slots in masters(self.client).items()})

    def refresh_soon(self) -> None:
        """Read the slot map again in the background (at most every ``REFRESH_S``)."""
        now = time.monotonic()
        if now - self._refreshed_at < REFRESH_S or not self._refresh_lock.acquire(blocking=False):
            return
        self._refreshed_at = now

        def refresh() -> None:
            try:
                self.client.nodes_manager.initialize()
                self._slot_nodes = self._snapshot()
                self._note_served()
            except Exception as exc:
                log.warning("cannot read the cluster's slot map", extra={"error": str(exc)})
            finally:
                self._refresh_lock.release()

        threading.Thread(target=refresh, name="risk-slot-map", daemon=True).start()

    # -- round trips ---------------------------------------------------------

    def round_trip(self, groups: list[tuple[str, list[Command]]]) -> list[list[Any]]:
        """Send each group of commands to the master of its key, all at once,
        then read every reply: one round trip of wall time however many masters.

        Calls made meanwhile by other threads or greenlets share the round
        trips (group_commit.py, one lane per master): each master gets all
        of its calls' commands in one write, and a master that is slow or
        down holds up only the calls that need it.

        Error replies come back as exceptions in the lists; a connection
        failure, a time-out, a slot that moved or a master in cool-down raise
        :class:`StorageError` for the whole call.
        """
        nodes: dict[str, ClusterNode] = {}
        per_node: dict[str, list[int]] = {}  # master -> the groups it gets, in order
        for g, (key, _) in enumerate(groups):
            node = self.node_of(key)
            nodes[node.name] = node
            per_node.setdefault(node.name, []).append(g)
        for name in per_node:
            if not self._breaker(name).allow():
                raise StorageError(f"redis master {name} unavailable (circuit open)")
        if self._commit_pid != os.getpid():
            # A forked child: a batch in flight at the fork would never be answered here.
            self._commit, self._commit_pid = self._new_commit(), os.getpid()
        replies = self._commit.submit(
            {name: _NodeCall(nodes[name], [groups[g][1] for g in gs]) for name, gs in per_node.items()},
            self._queue_wait_s)
        out: list[list[Any]] = [[] for _ in groups]
        for name, gs in per_node.items():
            for g, got in zip(gs, replies[name], strict=True):
                out[g] = got
        moved = [r for got in out for r in got
                 if isinstance(r, redis.exceptions.MovedError | redis.exceptions.AskError)]
        if moved or any(isinstance(r, redis.exceptions.ClusterDownError) for got in out for r in got):
            self.refresh_soon()
            raise StorageError(f"redis cluster is reconfiguring: {moved[0] if moved else 'CLUSTERDOWN'}")
        return out

    def _send(self, name: Hashable, parts: Sequence[Part]) -> _NodeBatch:
        """Write a batch of calls to one master (the group commit's ``start``).

        A group that ends with ``WAIT`` has it moved to the end of the batch,
        where one ``WAIT`` covers every write before it: Redis runs a
        connection's commands in order, so one ``WAIT`` per call would add
        up their time-outs when a replica lags.
        """
        node = cast(_NodeCall, parts[0].payload).node
        packed: list[bytes] = []
        shapes: list[list[tuple[int, bool]]] = []
        wait: tuple[int, int] | None = None
        for part in parts:
            shape = []
            for group in cast(_NodeCall, part.payload).groups:
                waits = bool(group) and group[-1][0] == "WAIT"
                if waits:
                    asked = (int(group[-1][1]), int(group[-1][2]))
                    wait = asked if wait is None else max(wait, asked)
                sent = group[:-1] if waits else group
                packed.extend(hiredis.pack_command(c) for c in sent)
                shape.append((len(sent), waits))
            shapes.append(shape)
        if wait is not None:
            packed.append(hiredis.pack_command(("WAIT", *wait)))  # type: ignore[arg-type]
        conn, reused = self._take(node)
        payload = b"".join(packed)
        try:
            try:
                conn.send_packed_command([payload], check_health=False)  # type: ignore[no-untyped-call]
            except redis.ConnectionError:
                if not reused:
                    raise  # a connection just made: the master refuses or is away
                # A kept connection the server closed while it sat idle (a
                # restart at the same address, an idle time-out): a failed
                # write (broken pipe, reset) reached nothing, so it goes once
                # more on a new connection, and the master is not taken for
                # failed. (Time-outs are not retried: they spent the budget.)
                conn.disconnect()  # type: ignore[no-untyped-call]
                conn.send_packed_command([payload], check_health=False)  # type: ignore[no-untyped-call]
                reused = False
        except (redis.RedisError, OSError) as exc:
            self._lost(node, conn, exc)
        return _NodeBatch(node, conn, parts, shapes, wait is not None, payload, reused)

    def _receive(self, batch: _NodeBatch, release: Callable[[], None]) -> None:
        """Read a master's replies into its calls (the group commit's ``complete``)."""
        node, conn = batch.node, batch.conn
        try:
            try:
                got = self._read_batch(conn, batch.shapes, first=True)
            except _ClosedBeforeAnswering:
                if not batch.reused:
                    raise
                # The write went into a kept connection the server had closed
                # (a restart at the same address: its first reply is the
                # end of the stream). Sent once more on a new connection: at
                # worst a call runs twice, and every call is idempotent by
                # its event (a decision's second run is a replay).
                conn.disconnect()  # type: ignore[no-untyped-call]
                conn.send_packed_command([batch.payload], check_health=False)  # type: ignore[no-untyped-call]
                got = self._read_batch(conn, batch.shapes)
        except (redis.RedisError, OSError) as exc:
            self._lost(node, conn, exc)
        waited: Any = None
        if batch.wait:
            # The scripts have answered: the next batch may go on another
            # connection while this one waits for the replicas.
            release()
            try:
                waited = conn.read_response()
            except (redis.RedisError, OSError):
                # A WAIT that reaches its time-out is answered late (Redis 6.2
                # notices at its next 100 ms tick; RedisStore._read_wait), often
                # after this socket's time-out. No reply is no acknowledgement:
                # the calls count as unreplicated, their answers stand (the
                # scripts ran), the socket is dropped (the late reply may still
                # come) and the breaker left alone: only a replica is missing.
                conn.disconnect()  # type: ignore[no-untyped-call]
                waited = 0
        self._give(node.name, conn)
        self._breaker(node.name).success()
        for part, shape, groups in zip(batch.parts, batch.shapes, got, strict=True):
            for (_, waits), replies in zip(shape, groups, strict=True):
                if waits:
                    replies.append(waited)
            part.reply = groups

    @staticmethod
    def _read_batch(conn: Connection, shapes: list[list[tuple[int, bool]]], first: bool = False
                    ) -> list[list[list[Any]]]:
        """A batch's replies, per call and group (error replies as exceptions).

        ``first``: a connection closed or reset before the first reply
        raises :class:`_ClosedBeforeAnswering` (a time-out does not).
        """
        got: list[list[list[Any]]] = []
        for shape in shapes:
            groups = []
            for count, _ in shape:
                replies = []
                for _ in range(count):
                    try:
                        replies.append(conn.read_response())
                    except redis.exceptions.ResponseError as exc:
                        replies.append(exc)
                    except redis.ConnectionError as exc:
                        if first:
                            raise _ClosedBeforeAnswering(str(exc)) from exc
                        raise
                    first = False
                groups.append(replies)
            got.append(groups)
        return got

    def _lost(self, node: ClusterNode, conn: Connection, exc: Exception) -> NoReturn:
        """A master failed mid-call: drop the connection (a reply may still
        arrive on it), open its breaker, say so, and re-read the slot map."""
        conn.disconnect()  # type: ignore[no-untyped-call]
        self._give(node.name, conn)
        self._breaker(node.name).failure()
        self._log_down(node.name, exc)
        self.refresh_soon()
        raise StorageError(f"redis cluster call failed: {exc}") from exc

    def _log_down(self, name: str, exc: Exception) -> None:
        """Say in the log which master failed and which slots it serves (at most once a second per master)."""
        now = time.monotonic()
        if now - self._logged.get(name, -1.0) < 1.0:
            return
        self._logged[name] = now
        log.warning("redis master failed: decisions on its slots are answered degraded until it (or its "
                    "promoted replica) answers", extra={"node": name, "slots": self._served.get(name, "unknown"),
                                                        "error": str(exc)})

    def _take(self, node: ClusterNode) -> tuple[Connection, bool]:
        """An idle connection to ``node`` (a new one when none is idle), and
        whether it was kept idle (the server may have closed it since).

        As RedisStore does, the hot path keeps its own stack of idle
        connections per master rather than going through the node's pool,
        which costs a readiness poll (a system call) and bookkeeping per call.
        """
        with self._idle_lock:
            if self._idle_pid != os.getpid():
                self._idle, self._idle_pid = {}, os.getpid()  # the parent's sockets are not ours
            stack = self._idle.get(node.name)
            if stack:
                return stack.pop(), True
        pool = self.client.get_redis_connection(node).connection_pool
        conn = cast(Connection, pool.make_connection())
        if self.native.mode != "off":
            # Every (re)connection may meet another server (a restart, a
            # promoted replica): it looks for the module first.
            conn.register_connect_callback(self._watch(node.name).on_connect)  # type: ignore[no-untyped-call]
        return conn, False

    def _give(self, name: str, conn: Connection) -> None:
        with self._idle_lock:
            stack = self._idle.setdefault(name, [])
            if len(stack) < MAX_IDLE:
                stack.append(conn)
                return
        conn.disconnect()  # type: ignore[no-untyped-call]

    # -- before serving ----------------------------------------------------------

    def warm_up(self, connections: int = WARM_CONNECTIONS) -> list[str]:
        """Do now what a worker's first decisions would otherwise pay for
        within their budget (gunicorn's ``post_worker_init``, before the
        worker accepts a request; qa14 found the first decision of each
        worker late, hence degraded):

        - the table of every slot's hash tag (:func:`slot_tag`: about 0.3 s
          of CPU, which the first decision paid between its two round trips);
        - ``connections`` connections to every master, kept idle (each has
          looked for the module on connecting), and every script known there;
        - the servers' clock, for the deadlines.

        Returns the masters it could not reach (logged): their first
        decisions connect, or are degraded while they are down.
        """
        slot_tag(0)
        cold = []
        for node in self.client.get_primaries():  # type: ignore[no-untyped-call]
            try:
                self._warm(node, connections)
            except (redis.RedisError, OSError) as exc:
                cold.append(node.name)
                log.warning("cannot warm up the connections to a master",
                            extra={"node": node.name, "error": str(exc)})
        self.deadline_ms()
        return cold

    def _warm(self, node: ClusterNode, connections: int) -> None:
        """Open ``connections`` to ``node`` for the idle stack; load the scripts it lacks."""
        conns = [self._take(node)[0] for _ in range(connections)]
        try:
            for conn in conns:
                conn.connect()  # type: ignore[no-untyped-call]
            load_missing(conns[0], SCRIPTS)
        except BaseException:
            for conn in conns:
                conn.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            for conn in conns:
                self._give(node.name, conn)

    def call(self, key: str, *commands: Command) -> list[Any]:
        """Commands on the master of ``key``'s slot, in one round trip."""
        return self.round_trip([(key, list(commands))])[0]

    def _load_scripts(self) -> None:
        """Load every script on every master (a new or restarted master lacks them)."""
        for node in self.client.get_primaries():  # type: ignore[no-untyped-call]
            conn = self.client.get_redis_connection(node)
            for script in SCRIPTS:
                conn.script_load(script.source)

    def _scripted(self, groups: list[tuple[str, list[Command]]]) -> list[list[Any]]:
        """:meth:`round_trip` of script calls: each call of a script the module
        does goes as the module's command where the master has it
        (:data:`NATIVE_OF`); a group that met a master without the module
        (``unknown command``: nothing ran) goes again as ``EVALSHA``, and that
        master falls back; so does a call only the script makes (the module
        answers "lua only", having changed nothing); a group that met a
        master without the scripts goes again once they are loaded."""
        # (no master with the module, the common case without it: nothing to look up)
        sent = self._native_forms(groups) if self.native.any_active() else groups
        replies = self.round_trip(sent)
        if sent is not groups:
            lacking = [i for i, out in enumerate(replies)
                       if any(isinstance(r, redis.ResponseError) and is_unknown_command(r) for r in out)]
            for i in lacking:
                self.native.unknown_command(self.node_of(groups[i][0]).name)
            self._again(replies, groups, lacking)
            lua_only = [i for i, out in enumerate(replies)
                        if any(isinstance(r, redis.ResponseError) and is_lua_only(r) for r in out)]
            self._again(replies, groups, lua_only, native=False)
        unloaded = [i for i, out in enumerate(replies)
                    if any(isinstance(r, redis.exceptions.NoScriptError) for r in out)]
        if unloaded:
            try:
                self._load_scripts()
            except redis.RedisError as exc:
                raise StorageError(f"cannot load the scripts: {exc}") from exc
            self._again(replies, groups, unloaded)
        return replies

    def _again(self, replies: list[list[Any]], groups: list[tuple[str, list[Command]]], which: list[int],
               native: bool = True) -> None:
        """Send the groups ``which`` again (as the masters' paths now say, or
        as scripts), in place in ``replies``."""
        if which:
            retried = [groups[i] for i in which]
            sent = self._native_forms(retried) if native and self.native.any_active() else retried
            for i, out in zip(which, self.round_trip(sent), strict=True):
                replies[i] = out

    def _native_forms(self, groups: list[tuple[str, list[Command]]]) -> list[tuple[str, list[Command]]]:
        """``groups`` with each ``EVALSHA`` of a script the module does replaced by
        its command, where the group's master has the module (the same list
        when nothing changes)."""
        out, changed = [], False
        for key, commands in groups:
            native: bool | None = None
            forms = commands
            for j, command in enumerate(commands):
                if command[0] == "EVALSHA" and command[1] in NATIVE_OF:
                    if native is None:
                        native = self.native.uses(self.node_of(key).name)
                    if native:
                        if forms is commands:
                            forms = list(commands)
                        forms[j] = (NATIVE_OF[command[1]], *command[2:])
            changed |= forms is not commands
            out.append((key, forms))
        return out if changed else groups

    def run(self, script: Script, keys: tuple[str, ...] | list[str], args: tuple[Any, ...]) -> Any:
        reply = self._scripted([(keys[0], [("EVALSHA", script.sha, len(keys), *keys, *args)])])[0][0]
        if isinstance(reply, Exception):
            raise StorageError(f"redis script failed: {reply}")
        return reply

    def note_wait(self, reply: Any) -> None:
        """Count a WAIT that fewer replicas than asked acknowledged."""
        if isinstance(reply, int) and reply < self.wait_replicas:
            self.unreplicated += 1

    def take_unreplicated(self) -> int:
        count, self.unreplicated = self.unreplicated, 0
        return count

    # -- the clock -------------------------------------------------------------

    def deadline_ms(self) -> int | str:
        """Now plus the budget on the servers' clock ("" while unknown); see RedisStore.deadline_ms."""
        if self.budget_ms is None:
            return ""
        now = time.monotonic()
        if now - self._offset_at > 1.0:
            self._offset_at = now
            for node in self.client.get_primaries():  # type: ignore[no-untyped-call]
                if not self._breaker(node.name).allow():
                    continue
                try:
                    before = time.time()
                    seconds, micros = self.client.get_redis_connection(node).time()
                    after = time.time()
                    # A sample whose round trip was slow (this thread waited for
                    # the CPU) can be off by half of it: keep the last good one.
                    if self._offset_ms is None or after - before < OFFSET_RTT_S:
                        self._offset_ms = (seconds * 1000 + micros / 1000) - (before + after) * 500
                    break
                except (redis.RedisError, OSError):
                    continue
        if self._offset_ms is None:
            return ""
        return int(time.time() * 1000 + self._offset_ms + self.budget_ms)

    def server_now_ms(self) -> int:
        return int(time.time() * 1000 + (self._offset_ms or 0.0))

    # -- the rest of the store's interface ---------------------------------------

    def ping(self) -> bool:
        """True when every master of the slot map answers (``/readyz`` says which does not)."""
        ok = True
        for node in self.client.get_primaries():  # type: ignore[no-untyped-call]
            try:
                self.client.get_redis_connection(node).ping()
                self._breaker(node.name).success()
            except (redis.RedisError, OSError):
                ok = False
        return ok

    def close(self) -> None:
        """Close every idle connection and the client (at shutdown)."""
        with self._idle_lock:
            for stack in self._idle.values():
                for conn in stack:
                    conn.disconnect()  # type: ignore[no-untyped-call]
            self._idle.clear()
        self.client.close()
