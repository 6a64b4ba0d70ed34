"""Redis storage for the decision limiter: one atomic script per decision.

Driver errors and time-outs are wrapped in one :class:`StorageError`. A short
time budget and a circuit breaker keep a slow or dead Redis from holding up
the caller: after a failure the store refuses at once for a cool-down, then
lets one call probe again, so it recovers by itself.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

import orjson
import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.retry import Retry

from riskservice.errors import StorageError
from riskservice.limits.keys import DecisionKeys, ban_key

Status = Literal["new", "replay", "conflict"]


@dataclass(frozen=True)
class DecisionRecord:
    """What the store decided for one event (stored for replays)."""

    status: Status
    decision_id: str
    ts_ms: int
    decision: int
    challenge: str
    findings: list[list[Any]]
    # Window rule -> (count after this decision, ms until its oldest entry leaves).
    windows: dict[str, tuple[int, int]]
    policy_version: str
    consumed: bool

    @classmethod
    def from_json(cls, status: Status, raw: bytes | str) -> DecisionRecord:
        rec = orjson.loads(raw)
        findings = rec["f"] if isinstance(rec["f"], list) else []  # cjson writes [] as {}
        windows = {code: (int(c), int(r)) for code, (c, r) in (rec.get("n") or {}).items()}
        return cls(status, rec["id"], int(rec["t"]), int(rec["dec"]), rec["ch"], findings, windows,
                   rec["pv"], bool(rec["c"]))


def decode_log(raw: bytes) -> list[int]:
    """A packed share log: 6-byte big-endian ms timestamps."""
    return [int.from_bytes(raw[i:i + 6], "big") for i in range(0, len(raw), 6)]


def decode_device_state(raw: bytes | None) -> tuple[list[int], dict[str, int]]:
    """A device's packed window state (see ``lua/decide.lua``): its share log
    and the users seen on it with when each last shared."""
    if not raw:
        return [], {}
    n = int.from_bytes(raw[:2], "big")
    pos = 2 + 6 * n
    log = decode_log(raw[2:pos])
    users = {}
    while pos < len(raw):
        ts = int.from_bytes(raw[pos:pos + 6], "big")
        length = int.from_bytes(raw[pos + 6:pos + 8], "big")
        users[raw[pos + 8:pos + 8 + length].decode()] = ts
        pos += 8 + length
    return log, users


def connect(url: str, budget_ms: int) -> redis.Redis:
    """A client whose every call fails within ``budget_ms``.

    The budget is split between connecting and answering so that even a call
    that must open a connection stays within it; no retries, since a retry
    would break the budget and a decision is cheap to degrade.
    """
    half = budget_ms / 2000
    return redis.Redis.from_url(
        url,
        socket_timeout=half,
        socket_connect_timeout=half,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        protocol=2,
    )


class CircuitBreaker:
    """Opens after a failure for ``cooldown_ms``; the first call after that probes."""

    def __init__(self, cooldown_ms: int) -> None:
        self._cooldown = cooldown_ms / 1000
        self._open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                return False
            if self._open_until:
                # Half-open: let this call probe; others wait out another cool-down.
                self._open_until = now + self._cooldown
            return True

    def failure(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self._cooldown

    def success(self) -> None:
        if self._open_until:
            with self._lock:
                self._open_until = 0.0


_DECIDE_LUA = resources.files("riskservice.limits").joinpath("lua/decide.lua").read_text()


class RedisStore:
    """The limiter's Redis storage.

    Parameters
    ----------
    client : redis.Redis
        Built by :func:`connect`, with the time budget.
    breaker_cooldown_ms : int
        How long to skip Redis after a failure.
    """

    def __init__(self, client: redis.Redis, breaker_cooldown_ms: int = 1000) -> None:
        self.client = client
        self._breaker = CircuitBreaker(breaker_cooldown_ms)
        self._decide_sha = hashlib.sha1(_DECIDE_LUA.encode()).hexdigest()
        self._local = threading.local()

    def _connection(self) -> Connection:
        """This thread's own connection for the decision script.

        The hot path talks to a redis-py connection directly rather than
        through the client: the client's pool and instrumentation cost about
        35 us of CPU per call, more than the script itself. Same timeouts (the
        pool's connection settings); a new one after a fork or an error.
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # new thread, or forked
            conn = cast(Connection, self.client.connection_pool.make_connection())
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _evalsha(self, conn: Connection, keys: DecisionKeys, args: tuple[object, ...]) -> Any:
        conn.send_command("EVALSHA", self._decide_sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        return conn.read_response()

    def _guard(self) -> None:
        if not self._breaker.allow():
            raise StorageError("redis unavailable (circuit open)")

    def decide(
        self,
        keys: DecisionKeys,
        *,
        user_id: str,
        plan: bytes,
        findings: bytes,
        fingerprint: str,
        decision_id: str,
        now_ms: int | None,
        ttl_ms: int,
    ) -> DecisionRecord:
        """Judge and record one decision atomically (see ``lua/decide.lua``)."""
        self._guard()
        args = ("" if now_ms is None else now_ms, fingerprint, decision_id, user_id, plan, findings, ttl_ms)
        conn = self._connection()
        try:
            try:
                status, raw = self._evalsha(conn, keys, args)
            except redis.exceptions.NoScriptError:
                # A restarted or new Redis: load the script once, then carry on.
                conn.send_command("SCRIPT", "LOAD", _DECIDE_LUA)  # type: ignore[no-untyped-call]
                conn.read_response()
                status, raw = self._evalsha(conn, keys, args)
        except (redis.RedisError, OSError) as exc:
            # The reply may still arrive later: never reuse this connection.
            conn.disconnect()  # type: ignore[no-untyped-call]
            self._breaker.failure()
            raise StorageError(f"redis decision script failed: {exc}") from exc
        self._breaker.success()
        return DecisionRecord.from_json(status.decode(), raw)

    def ping(self) -> bool:
        """True when Redis answers now (ignores the breaker: readiness must probe)."""
        try:
            ok = bool(self.client.ping())
        except redis.RedisError:
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
