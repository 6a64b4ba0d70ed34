"""Node keys and label propagation's choices, written once for both engines.

A node's key is a pseudo-random 32-bit number computed from its id alone
(:func:`node_key`), so label propagation (graphs/features/community.py, and
graphs/spark/community.py) makes the same choices whatever order the nodes
come in: which nodes move in a round (:func:`lpa_moves`) and how a tie
between two equally heavy labels breaks (:func:`lpa_tie`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

from graphs.signals.formulas import Ops, X

__all__ = ["lpa_moves", "lpa_tie", "node_key", "node_keys", "seed_mix"]


def seed_mix(seed: int) -> int:
    """The 32-bit number a seed XORs into every node key (see :func:`node_key`)."""
    return zlib.crc32(f"seed:{seed}".encode())


def node_key(name: str, seed: int = 0) -> int:
    """A node's pseudo-random 32-bit key: CRC-32 of its id XOR the seed's mix.

    Both engines compute it from the id alone (Spark: ``crc32(id) ^ mix``),
    so label propagation makes the same choices whatever order nodes come in.

    Examples
    --------
    >>> node_key("u1") == zlib.crc32(b"u1") ^ seed_mix(0)
    True
    """
    return zlib.crc32(name.encode()) ^ seed_mix(seed)


def node_keys(names: Iterable[str], seed: int = 0) -> np.ndarray:
    """:func:`node_key` of many ids at once, as int64.

    Examples
    --------
    >>> node_keys(["u1", "u2"]).tolist() == [node_key("u1"), node_key("u2")]
    True
    """
    crc = np.fromiter((zlib.crc32(n.encode()) for n in names), np.int64)
    return crc ^ seed_mix(seed)


def lpa_moves(ops: Ops, key: X, round_no: int) -> X:
    """Whether a node may adopt a new label in round ``round_no``: bit ``round_no`` of its key.

    Half of the nodes move each round (semi-synchronous updates), which
    stops the flip-flopping of fully synchronous label propagation.
    """
    return ops.bit(key, round_no % 32) == 1


def lpa_tie(ops: Ops, node_key_: X, label_key: X, round_no: int) -> X:
    """Tie-break of two equally heavy labels for one node in one round (larger wins).

    Mixes the node's and the label's keys, so different nodes break the
    same tie differently, as random noise would, but reproducibly.  Plain
    integer arithmetic below 2**63, the same in numpy and in Spark.
    """
    return (ops.xor(node_key_, label_key) * 40503 + round_no * 7919) % (2 ** 32)
