"""One case's slices of the event and edge arrays, as :mod:`graphs.cases.build` cuts them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["CaseParts"]

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class CaseParts:
    """One case's slices: member node indices (devices offset by ``n_users``),
    its internal share edges (edge indices), ``(device, user, count)`` and
    ``(user, user)`` lockstep links, its sharers' events and delivered edges."""

    nodes: Ints
    share_edges: Ints
    device_pairs: tuple[Ints, Ints, Ints]
    lockstep: tuple[Ints, Ints]
    events: Ints
    out_edges: Ints
