"""Small vectorised numpy helpers shared by the scoring modules.

Every score in this package is built from the same few pieces: a linear ramp
that maps a raw measure onto [0, 1], a log scale for heavy-tailed counts, a
noisy-OR to combine independent pieces of evidence, and group-by reductions
over sorted integer keys.  Keeping them here keeps the scoring modules about
*what* is measured rather than *how* arrays are shuffled.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["count_in_window", "group_starts", "high_quantile", "log_scale", "lookup", "noisy_or", "ramp"]


def ramp(x: ArrayLike, lo: float, hi: float) -> NDArray[np.float64]:
    """Map ``x`` linearly from ``[lo, hi]`` onto ``[0, 1]``, clipped.

    Examples
    --------
    >>> ramp([0, 5, 10, 20], 0, 10).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    a = np.asarray(x, dtype=np.float64)
    out: NDArray[np.float64] = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    return out


def log_scale(x: ArrayLike, ref: float) -> NDArray[np.float64]:
    """``log1p(x) / log1p(ref)`` clipped to ``[0, 1]``; for heavy-tailed counts.

    Examples
    --------
    >>> log_scale([0, 9, 99], 99).round(2).tolist()
    [0.0, 0.5, 1.0]
    """
    a = np.asarray(x, dtype=np.float64)
    out: NDArray[np.float64] = np.clip(np.log1p(np.maximum(a, 0.0)) / np.log1p(max(ref, 1.0)), 0.0, 1.0)
    return out


def high_quantile(x: NDArray[np.float64], q: float = 0.99, floor: float = 1.0) -> float:
    """Quantile ``q`` of the positive entries of ``x`` (``floor`` if none).

    Used as the reference of :func:`log_scale` so that scores do not depend on
    the size of the graph.

    Examples
    --------
    >>> high_quantile(np.array([0.0, 1.0, 2.0, 3.0]), q=0.5)
    2.0
    """
    pos = x[x > 0]
    if pos.size == 0:
        return floor
    return max(float(np.quantile(pos, q)), floor)


def noisy_or(*scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Combine independent evidence in ``[0, 1]``: ``1 - prod(1 - s)``.

    Examples
    --------
    >>> noisy_or(np.array([0.5, 0.0]), np.array([0.5, 0.0])).tolist()
    [0.75, 0.0]
    """
    out = np.ones_like(scores[0], dtype=np.float64)
    for s in scores:
        out *= 1.0 - np.clip(s, 0.0, 1.0)
    return 1.0 - out


def group_starts(sorted_keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """Start offsets of the runs of equal values in an already sorted array.

    Examples
    --------
    >>> group_starts(np.array([3, 3, 5, 7, 7, 7])).tolist()
    [0, 2, 3]
    """
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.int64)


def lookup(sorted_keys: NDArray[np.int64], queries: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index of each query in ``sorted_keys`` (unique, ascending), or -1.

    Examples
    --------
    >>> lookup(np.array([2, 4, 9]), np.array([4, 5, 9, 1])).tolist()
    [1, -1, 2, -1]
    """
    if sorted_keys.size == 0:
        return np.full(queries.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, queries)
    pos_c = np.minimum(pos, sorted_keys.size - 1)
    found = sorted_keys[pos_c] == queries
    return np.where(found, pos_c, -1).astype(np.int64)


def count_in_window(keys: NDArray[np.float64], half_width: float) -> NDArray[np.int64]:
    """For each entry of sorted ``keys``, how many entries lie within ``±half_width``.

    Examples
    --------
    >>> count_in_window(np.array([0.0, 1.0, 2.0, 10.0]), 1.0).tolist()
    [2, 3, 2, 1]
    """
    lo = np.searchsorted(keys, keys - half_width, side="left")
    hi = np.searchsorted(keys, keys + half_width, side="right")
    return (hi - lo).astype(np.int64)
