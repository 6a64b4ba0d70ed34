"""Share events to columnar arrays.

The batch job reads the exported decision log (one JSON object per line, see
SPEC section 5) and turns it into flat numpy arrays: one row per decision
(``sharer``, ``device``, ``coupon``, ``ts``, ``decision``, outcome counts) and
one row per delivered sharer -> recipient edge.  Ids are interned to dense
integer indices once, here, so every later stage works on integer arrays and
never touches a Python object per edge.

Users and devices are separate id spaces: ``"d1"`` the user and ``"d1"`` the
device are two nodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import orjson
from numpy.typing import NDArray
from tqdm import tqdm

ALLOW, CHALLENGE, BLOCK = 0, 1, 2
_DECISIONS = {"allow": ALLOW, "challenge": CHALLENGE, "block": BLOCK}
_LABELS = {"legit": 0, "fraud": 1}
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


def _iter_dicts(source: EventSource, progress: bool = False) -> Iterator[Mapping[str, Any]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            # disable=None: the bar turns itself off when stderr is not a terminal
            lines = tqdm(fh, desc="reading events", unit=" lines", disable=None if progress else True)
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise EventFormatError(f"line {lineno}: not JSON ({exc})") from exc
    else:
        yield from source


def _count(value: Any) -> int:
    return MISSING if value is None else int(value)


def read_events(source: EventSource, *, progress: bool = False) -> EventTable:
    """Read share events from a JSONL path or an iterable of dicts.

    Parameters
    ----------
    source
        Path of a JSONL file (one event per line) or an iterable of event dicts.
    progress
        Show a progress bar while reading a file (only on a terminal).

    Returns
    -------
    EventTable
        Interned, columnar events.

    Examples
    --------
    >>> t = read_events([{"event_id": "e1", "user_id": "a", "device_id": "d",
    ...                   "coupon_id": "c", "recipients": ["b", "c"], "ts": 1.0,
    ...                   "decision": "allow", "claimed": 1}])
    >>> t.users.tolist(), t.edge_dst.tolist(), t.claimed.tolist()
    (['a', 'b', 'c'], [1, 2], [1])
    """
    sharers: list[str] = []
    devices: list[Any] = []
    coupons: list[str] = []
    ts: list[float] = []
    decisions: list[int] = []
    n_rec: list[int] = []
    outcome: list[tuple[int, int, int]] = []
    rec_flat: list[str] = []
    rec_len: list[int] = []
    labels: list[tuple[int, int]] = []  # (event row, label code)
    for i, ev in enumerate(_iter_dicts(source, progress)):
        try:
            sharers.append(str(ev["user_id"]))
            coupons.append(str(ev["coupon_id"]))
            ts.append(float(ev["ts"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EventFormatError(f"event {i}: missing or bad user_id/coupon_id/ts") from exc
        devices.append(ev.get("device_id"))
        decisions.append(_DECISIONS.get(ev.get("decision") or "allow", ALLOW))
        recs = ev.get("recipients")
        if recs:
            rec_flat.extend(map(str, recs))
            rec_len.append(len(recs))
            n_rec.append(len(recs))
        else:
            rec_len.append(0)
            n_rec.append(int(ev.get("recipient_count") or 0))
        outcome.append((_count(ev.get("delivered")), _count(ev.get("opened")),
                        _count(ev.get("claimed"))))
        lab = ev.get("label")
        if lab in _LABELS:
            labels.append((i, _LABELS[lab]))
    return _intern(sharers, devices, coupons, ts, decisions, n_rec, outcome,
                   rec_flat, rec_len, labels)


def _intern(sharers: list[str], devices: list[Any], coupons: list[str], ts: list[float],
            decisions: list[int], n_rec: list[int], outcome: list[tuple[int, int, int]],
            rec_flat: list[str], rec_len: list[int],
            labels: list[tuple[int, int]]) -> EventTable:
    # One dict per id space; setdefault keeps first-seen order, which makes the
    # indices (and so every seeded algorithm downstream) reproducible.
    uidx: dict[str, int] = {}
    sharer = np.fromiter((uidx.setdefault(u, len(uidx)) for u in sharers), np.int32, len(sharers))
    rec = np.fromiter((uidx.setdefault(u, len(uidx)) for u in rec_flat), np.int32, len(rec_flat))
    didx: dict[str, int] = {}
    device = np.fromiter((MISSING if d is None else didx.setdefault(str(d), len(didx))
                         for d in devices), np.int32, len(devices))
    cidx: dict[str, int] = {}
    coupon = np.fromiter((cidx.setdefault(c, len(cidx)) for c in coupons), np.int32, len(coupons))
    decision = np.asarray(decisions, dtype=np.int8)
    out = np.asarray(outcome, dtype=np.int32).reshape(-1, 3)
    ev_of_rec = np.repeat(np.arange(len(rec_len), dtype=np.int32),
                          np.asarray(rec_len, dtype=np.int64))
    # Only allowed shares reach their recipients; a share whose outcome says
    # nothing was delivered carries no edge either.
    carries = (decision == ALLOW) & (out[:, 0] != 0)
    keep = carries[ev_of_rec]
    user_label = np.full(len(uidx), MISSING, dtype=np.int8)
    device_label = np.full(len(didx), MISSING, dtype=np.int8)
    for row, code in labels:  # analyst labels are rare; last label wins
        user_label[sharer[row]] = code
        if device[row] >= 0:
            device_label[device[row]] = code
    return EventTable(
        users=_names(uidx), devices=_names(didx), coupons=_names(cidx),
        sharer=sharer, device=device, coupon=coupon,
        ts=np.asarray(ts, dtype=np.float64), decision=decision,
        n_recipients=np.asarray(n_rec, dtype=np.int32),
        delivered=out[:, 0].copy(), opened=out[:, 1].copy(), claimed=out[:, 2].copy(),
        edge_src=sharer[ev_of_rec[keep]], edge_dst=rec[keep], edge_event=ev_of_rec[keep],
        attempt_src=sharer[ev_of_rec[~keep]], attempt_dst=rec[~keep],
        user_label=user_label, device_label=device_label,
    )


def _names(index: dict[str, int]) -> NDArray[np.object_]:
    arr = np.empty(len(index), dtype=object)
    arr[:] = list(index)
    return arr
