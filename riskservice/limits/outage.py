"""Shares decided while Redis was unreachable: judged locally, remembered,
and counted in Redis once it answers again.

With the fail mode ``allow``, an outage must not turn into a way around the
limits. While the store is unavailable each process judges the count windows
(device velocity, daily caps, users per device) in memory, with the same
algorithm as the Redis script (:class:`riskservice.limits.memory.MemoryStore`),
so a device gets at most one window's limit per process during an outage
instead of unlimited shares. Every share it allowed is kept in a bounded log
and written to Redis when Redis answers again (``lua/reconcile.lua``, idempotent
by event id), at its own time, so the windows afterwards include it.

Bounds, for a device during one outage with ``W`` serving processes: at most
``W x limit`` shares per window are allowed, so the limit is exceeded by at
most ``(W - 1) x limit`` (each process starts its memory empty); shares
beyond the log's capacity (``capacity``, per process) are allowed by the
local windows but never reach Redis, and are counted in ``dropped``. With
the fail modes ``challenge`` and ``block`` no share is allowed during an
outage, so there is nothing to reconcile.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

from riskservice.limits.contract import DecideArgs
from riskservice.limits.keys import DecisionKeys
from riskservice.limits.memory import MemoryStore
from riskservice.limits.records import DecisionRecord

__all__ = ["MissedShare", "OutageLog", "adopt_spilled"]


@dataclass(frozen=True)
class MissedShare:
    """A share allowed without Redis: the decision script's keys and arguments,
    with ``now`` set to when it was allowed (on the server's clock)."""

    keys: DecisionKeys
    args: DecideArgs

    def to_json(self) -> bytes:
        """One line of a spill file: the keys and arguments by name, bytes as base64."""
        args = {k: {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
                for k, v in self.args._asdict().items()}
        return orjson.dumps({"keys": self.keys._asdict(), "args": args})

    @classmethod
    def from_json(cls, line: bytes) -> MissedShare:
        data = orjson.loads(line)
        args: dict[str, object] = {k: base64.b64decode(v["b64"]) if isinstance(v, dict) else v
                                   for k, v in data["args"].items()}
        return cls(DecisionKeys(**data["keys"]), DecideArgs(**args))  # type: ignore[arg-type]  # (by name)


class OutageLog:
    """Local windows during an outage, and the shares they allowed.

    Parameters
    ----------
    capacity : int
        How many allowed shares a process remembers until Redis is back.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._pending: deque[MissedShare] = deque()
        self._windows = MemoryStore()
        self._lock = threading.Lock()

    def judge(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        """Decide a share on the local windows; remember it if allowed."""
        with self._lock:
            rec = self._windows.decide(keys, args)
            if rec.status == "new" and rec.decision == 0:
                if len(self._pending) < self.capacity:
                    self._pending.append(MissedShare(keys, args))
                else:
                    self.dropped += 1
            return rec

    def pending(self) -> int:
        return len(self._pending)

    def take_dropped(self) -> int:
        """How many were dropped since the last call (for a counter)."""
        with self._lock:
            dropped, self.dropped = self.dropped, 0
            return dropped

    def take(self, n: int) -> list[MissedShare]:
        """Take the oldest ``n`` shares to write (others taking at once get others)."""
        with self._lock:
            return [self._pending.popleft() for _ in range(min(n, len(self._pending)))]

    def written(self, shares: list[MissedShare]) -> None:
        """``shares`` are in Redis; once none is left the outage is over and the
        local windows are forgotten (Redis holds them now)."""
        with self._lock:
            if not self._pending:
                self._windows = MemoryStore()

    def spill(self, folder: Path) -> Path | None:
        """Write the shares not yet in Redis to a new file in ``folder`` (and
        forget them here); the file, or None when there were none."""
        with self._lock:
            shares, self._pending = list(self._pending), deque()
        if not shares:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.time_ns()}-{os.getpid()}.jsonl"
        partial = path.with_suffix(".partial")
        partial.write_bytes(b"".join(share.to_json() + b"\n" for share in shares))
        partial.rename(path)  # (whole or not at all for a reader)
        return path

    def restore(self, shares: list[MissedShare]) -> None:
        """``shares`` could not be written: back to the front, in their order."""
        with self._lock:
            self._pending.extendleft(reversed(shares))


def adopt_spilled(folder: Path, log: OutageLog) -> int:
    """Take over the shares other processes spilled into ``folder``: each
    file is claimed by renaming it (so two processes never take the same
    one), read into ``log``'s pending shares, and deleted. How many."""
    taken = 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        claimed = path.with_suffix(f".adopting-{os.getpid()}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another process took it
        shares = [MissedShare.from_json(line) for line in claimed.read_bytes().splitlines() if line.strip()]
        log.restore(shares)
        claimed.unlink()
        taken += len(shares)
    return taken

