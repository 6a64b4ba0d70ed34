"""Redis Cluster hash slots, computed the way Redis computes them.

On a cluster, one script may only touch keys of one slot. Keys that several
slots write to (the share-event stream, the review queue) are therefore
sharded by slot: a device's script appends to the shard of the device's own
slot, named with a hash tag that lands in that slot (:func:`slot_tag`), and
readers merge the shards. This module is the one place that knows the hash.
"""

from __future__ import annotations

import binascii
import functools
from typing import cast

__all__ = ["SLOTS", "hash_tag", "key_slot", "slot_tag"]

SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.

    >>> crc16(b"123456789")
    12739
    """
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def hash_tag(key: str | bytes) -> bytes:
    """The part of a key that is hashed: the first ``{...}`` if not empty, else the key.

    >>> hash_tag("risk:{d:dev-1}:state"), hash_tag("plain"), hash_tag("a{}b{c}")
    (b'd:dev-1', b'plain', b'a{}b{c}')
    """
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            return raw[start + 1:end]
    return raw


def key_slot(key: str | bytes) -> int:
    """The cluster slot of a key (``CLUSTER KEYSLOT``).

    >>> key_slot("risk:{d:dev-1}:state") == key_slot("risk:{d:dev-1}:ban")
    True
    """
    # binascii's CRC-CCITT is the same CRC-16/XMODEM as crc16, in C: this is on the decision path.
    return binascii.crc_hqx(hash_tag(key), 0) % SLOTS


@functools.cache
def _tags() -> list[str]:
    """``s<n>`` for the smallest ``n`` landing in each slot, all slots at once
    (about 170 000 candidates; binascii's CRC is the same CRC-16/XMODEM in C)."""
    tags: list[str | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        tag = f"s{n}"
        slot = binascii.crc_hqx(tag.encode(), 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return cast(list[str], tags)


def slot_tag(slot: int) -> str:
    """A short hash tag whose keys land in ``slot``: ``s<n>`` for the smallest such ``n``.

    >>> key_slot("risk:events:{" + slot_tag(42) + "}")
    42
    """
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot must be in [0, {SLOTS})")
    return _tags()[slot]
