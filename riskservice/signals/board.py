"""The board: a bounded set of flagged accounts the workers copy into memory.

Some evidence is about an account other than the sharer: the recipients a
share names (a sink that a ring or a hoarder's feeders fill), or a standing
the sharer earned (a waiver of the fan-out rule). The decision script reads
only the device's keys, and a recipient's key would sit in another slot on
Redis Cluster, so this evidence goes another way: the signal consumer keeps
the few flagged accounts on one hash, ``risk:{signals}:board`` (its own hash
tag), and every worker keeps a copy in memory, re-read when the hash's
version moved, at most once a second (:mod:`riskservice.signals.board_cache`).
A decision then costs no Redis work for it at all.

Fields: ``<kind>|<account>`` -> ``<value>@<until ms>`` (the kinds in
:data:`KINDS`), and ``_v``, the version, written after every change of a
batch (a reader that saw a new version sees at least that batch's changes).
The board holds at most ``cap`` entries; when full, the entry that expires
first goes.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BOARD_KEY", "KINDS", "VERSION_FIELD", "Board", "BoardWrite", "board_field", "parse_value"]

BOARD_KEY = "risk:{signals}:board"
VERSION_FIELD = "_v"
# kind -> what a flag of that kind says about the account.
KINDS = {
    "r": "a sink: receives from many fresh accounts and claims nearly everything",
    "s": "a fresh account that shared to a sink",
    "w": "passed fan-out challenges with shares its recipients claim as real people do",
    "g": "a fresh account in a burst of fresh accounts sharing one coupon",
    "b": "a ring sink: its sharers also share to the same other heavy-claiming recipients, "
         "or a closed circle's recipient (circles.py)",
    "m": "a member of a ring sink's block of sharers, or of a closed circle",
    "p": "a device in a pool of devices that accounts rotate over",
    "q": "an account in a pool of devices that accounts rotate over",
}


class BoardWrite(NamedTuple):
    """A field of the board to set (``value``) or delete (``value`` None)."""

    field: str
    value: str | None


def board_field(kind: str, account: str) -> str:
    """The board's field of ``account`` flagged as ``kind``.

    >>> board_field("r", "u7")
    'r|u7'
    """
    return f"{kind}|{account}"


def parse_value(text: str) -> tuple[int, int] | None:
    """``"<value>@<until>"`` as ``(value, until)``; None when malformed.

    >>> parse_value("4@1700000000000"), parse_value("x")
    ((4, 1700000000000), None)
    """
    value, _, until = text.partition("@")
    try:
        return int(value), int(until)
    except ValueError:
        return None


class Board:
    """What the consumer has published on the board, and the writes that keep
    Redis in step with it.

    Parameters
    ----------
    cap : int
        Most entries at once (the workers' copies are this big at most).
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.entries: dict[str, tuple[int, int]] = {}
        self.changes = 0
        self._swept = 0

    def set(self, kind: str, account: str, value: int, until: int, now: int) -> list[BoardWrite]:
        """Publish (or update) a flag; nothing when unchanged."""
        return self.set_many([(kind, account, value, until)], now)

    def set_many(self, flags: list[tuple[str, str, int, int]], now: int) -> list[BoardWrite]:
        """Publish (or update) several flags ``(kind, account, value, until)``
        with one version write; nothing when none changed."""
        writes: list[BoardWrite] = []
        for kind, account, value, until in flags:
            key = board_field(kind, account)
            if self.entries.get(key) == (value, until):
                continue
            writes += self._sweep(now)
            self.entries[key] = (value, until)
            writes.append(BoardWrite(key, f"{value}@{until}"))
            while len(self.entries) > self.cap:
                first = min(self.entries, key=lambda k: self.entries[k][1])
                del self.entries[first]
                writes.append(BoardWrite(first, None))
        return self._versioned(writes, now) if writes else []

    def clear(self, kind: str, account: str, now: int) -> list[BoardWrite]:
        """Withdraw a flag; nothing when there is none."""
        key = board_field(kind, account)
        if self.entries.pop(key, None) is None:
            return []
        return self._versioned([BoardWrite(key, None)], now)

    def get(self, kind: str, account: str, now: int) -> tuple[int, int] | None:
        """A live flag's ``(value, until)``."""
        hit = self.entries.get(board_field(kind, account))
        return hit if hit is not None and hit[1] > now else None

    def _sweep(self, now: int) -> list[BoardWrite]:
        """Delete the flags past their ``until`` (at most once a minute of event time)."""
        if now - self._swept < 60_000:
            return []
        self._swept = now
        gone = [k for k, (_, until) in self.entries.items() if until <= now]
        for k in gone:
            del self.entries[k]
        return [BoardWrite(k, None) for k in gone]

    def _versioned(self, writes: list[BoardWrite], now: int) -> list[BoardWrite]:
        # The version names the change: event time and a counter, so a
        # consumer restarted on the same stream does not reuse an old one
        # for different contents unless both coincide.
        self.changes += 1
        return [*writes, BoardWrite(VERSION_FIELD, f"{now}.{self.changes}")]
