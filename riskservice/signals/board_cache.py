"""A worker's in-memory copy of the signal board (:mod:`riskservice.signals.board`).

Decisions read flags from this copy, never from Redis. The copy is checked
lazily, on the first lookup after ``interval_ms`` (one ``HGET`` of the
board's version), and re-read whole (one ``HGETALL`` of at most the board's
cap) only when the version moved. No thread is started: the first decision
after a second pays the check, the others none.

Staleness: a flag reaches decisions at most ``interval_ms`` (1 s) after the
consumer wrote it, and the consumer writes within about a second of the
share that raised it, so about two seconds in all. A flag past its
``until`` is ignored even if the copy still holds it. When Redis does not
answer, the copy in hand keeps serving (its flags still expire) and the
next check comes ``interval_ms`` later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from riskservice.signals.board import BOARD_KEY, VERSION_FIELD, board_field, parse_value

__all__ = ["BoardCache"]

log = logging.getLogger("riskservice.signals")


def _wall_ms() -> int:
    return int(time.time() * 1000)


class BoardCache:
    """The board's flags as of the last check.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        Where the consumer writes the board.
    interval_ms : int
        Least time between two checks of the version.
    clock : callable, optional
        Current time in ms (None from it: the wall clock). The backtest
        passes its event clock, so the replay sees the copy as stale as the
        service would.
    key : str
        The board's hash.
    """

    def __init__(self, client: Any, *, interval_ms: int = 1000, clock: Callable[[], int | None] | None = None,
                 key: str = BOARD_KEY) -> None:
        self.client, self.interval_ms, self.key = client, interval_ms, key
        self._clock = clock or _wall_ms
        self._flags: dict[str, tuple[int, int]] = {}
        self._version: bytes | None = None
        self._next = -1
        self._lock = threading.Lock()
        self.loads = 0

    def now_ms(self) -> int:
        now = self._clock()
        return _wall_ms() if now is None else now

    def refresh(self, now: int) -> None:
        """Check the version if ``interval_ms`` has passed; re-read on a change."""
        if now < self._next:
            return
        with self._lock:
            if now < self._next:
                return
            self._next = now + self.interval_ms
            try:
                version = self.client.hget(self.key, VERSION_FIELD)
                if version == self._version:
                    return
                raw = self.client.hgetall(self.key)
            except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
                log.warning("signal board: redis error, keeping the copy in hand", extra={"error": str(exc)})
                return
            flags = {}
            for field, value in raw.items():
                parsed = parse_value(value.decode())
                if parsed is not None:
                    flags[field.decode()] = parsed
            self._flags, self._version = flags, raw.get(VERSION_FIELD.encode(), version)
            self.loads += 1

    def strongest(self, kind: str, accounts: Iterable[str], now: int | None = None) -> tuple[str, int] | None:
        """The account of ``accounts`` with the largest live flag of ``kind``, and its value."""
        now = self.now_ms() if now is None else now
        self.refresh(now)
        best: tuple[str, int] | None = None
        flags = self._flags
        for account in accounts:
            hit = flags.get(board_field(kind, account))
            if hit is not None and hit[1] > now and (best is None or hit[0] > best[1]):
                best = (account, hit[0])
        return best
