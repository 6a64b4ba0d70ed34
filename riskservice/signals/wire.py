"""The few Redis protocol pieces the signal consumer sends itself: stream
entries as sortable tuples, commands packed into one write per node (plain
bytes parsed by hiredis: redis-py's pipeline costs far more per command, and
a round on a cluster sends one command per slot's shard), and which errors
mean that a master is away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import hiredis
import redis

__all__ = ["AWAY", "Entry", "encode", "entries_of", "moved", "order_of", "packed", "raise_reply"]

# Errors that mean "this master is away or no longer serves the slot": the
# master is skipped for the round and the slot map read again.
AWAY = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, redis.exceptions.AskError,
        redis.exceptions.TryAgainError)
MOVED_PREFIXES = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")


def moved(error: Exception) -> bool:
    """True for an error reply that says the slot is served elsewhere or not at all."""
    return isinstance(error, AWAY) or str(error).startswith(MOVED_PREFIXES)


class Entry(NamedTuple):
    """One stream entry: its id as a sortable pair, its shard, raw id, decoded fields."""

    order: tuple[int, int]
    shard: str
    id: bytes
    fields: dict[str, str]


def order_of(entry_id: bytes | str) -> tuple[int, int]:
    """A stream id as a sortable ``(ms, sequence)`` pair.

    >>> order_of(b"1700000000000-3")
    (1700000000000, 3)
    """
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def entries_of(shard: str, raw: Sequence[Any]) -> list[Entry]:
    """Entries of an XRANGE reply (or of one stream of an XREADGROUP reply)."""
    out = []
    for entry_id, flat in raw:
        if flat is None:  # deleted while pending
            continue
        fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)} \
            if isinstance(flat, list) else {k.decode(): v.decode() for k, v in flat.items()}
        out.append(Entry(order_of(entry_id), shard, entry_id, fields))
    return out


def _bulk(word: str | bytes | int) -> bytes:
    data = word if isinstance(word, bytes) else str(word).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode(command: Sequence[str | bytes | int]) -> bytes:
    """One command in the Redis protocol."""
    return b"*%d\r\n" % len(command) + b"".join(_bulk(w) for w in command)



def packed(node: redis.Redis, commands: Sequence[Sequence[str | bytes | int] | bytes]) -> list[Any]:
    """Send ``commands`` (or already encoded ones) to one node in one write and
    read their replies (error replies come back as ``hiredis.ReplyError``
    values, not raised).

    Raises
    ------
    redis.ConnectionError, redis.TimeoutError
        When the node does not answer; the connection is then dropped.
    """
    if not commands:
        return []
    pool = node.connection_pool
    conn = pool.get_connection()
    ok = False
    try:
        data = b"".join(c if isinstance(c, bytes) else encode(c) for c in commands)
        conn.send_packed_command([data], check_health=False)  # type: ignore[no-untyped-call]
        reader = hiredis.Reader()
        out: list[Any] = []
        sock: Any = conn._sock  # read straight from the socket: hiredis parses thousands of replies at once
        while len(out) < len(commands):
            try:
                chunk = sock.recv(1 << 16)
            except OSError as exc:
                raise redis.ConnectionError(f"reading replies: {exc}") from exc
            if not chunk:
                raise redis.ConnectionError("connection closed while reading replies")
            reader.feed(chunk)
            while (reply := reader.gets()) is not False:
                out.append(reply)
        ok = True
        return out
    finally:
        if not ok:
            conn.disconnect()  # type: ignore[no-untyped-call]  # replies may be left unread
        pool.release(conn)


def raise_reply(error: Exception) -> None:
    """Raise an error reply: as "away" (retried) when the slot moved, else as it is."""
    if moved(error):
        raise redis.exceptions.TryAgainError(str(error))
    raise redis.ResponseError(str(error))
