"""The columnar event table every stage works on, and its codes.

The batch job reads the exported decision log (one JSON object per line, as
``python -m riskservice export`` writes it) and turns it into flat numpy arrays: one row per decision
(``sharer``, ``device``, ``coupon``, ``ts``, ``decision``, outcome counts) and
one row per delivered sharer -> recipient edge.  Ids are interned to dense
integer indices once, here, so every later stage works on integer arrays and
never touches a Python object per edge.

Users and devices are separate id spaces: ``"d1"`` the user and ``"d1"`` the
device are two nodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

__all__ = ["ALLOW", "BLOCK", "CHALLENGE", "DECISIONS", "LABELS", "MISSING", "EventFormatError",
           "EventSource", "EventTable"]

ALLOW, CHALLENGE, BLOCK = 0, 1, 2
#: decision names of the export -> codes (a missing decision means allow)
DECISIONS = {"allow": ALLOW, "challenge": CHALLENGE, "block": BLOCK}
#: analyst label names -> codes
LABELS = {"legit": 0, "fraud": 1}
#: Marks a missing outcome count or a missing device.
MISSING = -1

EventSource = Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]]]


class EventFormatError(ValueError):
    """An event line that cannot be used (not JSON, or a required field missing)."""


@dataclass
class EventTable:
    """Columnar view of a batch of share events.

    Per decision (length ``n_events``): ``sharer`` (user index), ``device``
    (device index or -1), ``coupon`` (coupon index), ``ts`` (epoch seconds),
    ``decision`` (0 allow, 1 challenge, 2 block), ``n_recipients``,
    ``delivered``/``opened``/``claimed`` (-1 when no outcome came back).
    Per delivered edge (allowed shares only): ``edge_src``, ``edge_dst`` (user
    indices) and ``edge_event`` (row of the decision that carried it);
    recipients of refused shares in ``attempt_src``/``attempt_dst``.
    ``user_label``/``device_label``: analyst labels, -1 none, 0 legit, 1 fraud.
    """

    users: NDArray[np.object_]
    devices: NDArray[np.object_]
    coupons: NDArray[np.object_]
    sharer: NDArray[np.int32]
    device: NDArray[np.int32]
    coupon: NDArray[np.int32]
    ts: NDArray[np.float64]
    decision: NDArray[np.int8]
    n_recipients: NDArray[np.int32]
    delivered: NDArray[np.int32]
    opened: NDArray[np.int32]
    claimed: NDArray[np.int32]
    edge_src: NDArray[np.int32]
    edge_dst: NDArray[np.int32]
    edge_event: NDArray[np.int32]
    #: recipients named by shares that were not delivered (challenged/blocked)
    attempt_src: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    attempt_dst: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    user_label: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    device_label: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))

    @property
    def n_users(self) -> int:
        return int(self.users.size)

    @property
    def n_devices(self) -> int:
        return int(self.devices.size)

    @property
    def n_events(self) -> int:
        return int(self.ts.size)

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.size)


