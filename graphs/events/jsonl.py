"""Share events from JSON lines to an :class:`~graphs.events.table.EventTable`.

The batch job reads the exported decision log (one JSON object per line) and
interns ids to dense integer indices once, here, so every later stage works
on integer arrays and never touches a Python object per edge.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from tqdm import tqdm

from graphs.events.table import ALLOW, DECISIONS, LABELS, MISSING, EventFormatError, EventSource, EventTable

__all__ = ["read_events"]


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
        decisions.append(DECISIONS.get(ev.get("decision") or "allow", ALLOW))
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
        if lab in LABELS:
            labels.append((i, LABELS[lab]))
    return _intern(sharers, devices, coupons, ts, decisions, n_rec, outcome,
                   rec_flat, rec_len, labels)


def _intern(sharers: list[str], devices: list[Any], coupons: list[str], ts: list[float],
            decisions: list[int], n_rec: list[int], outcome: list[tuple[int, int, int]],
            rec_flat: list[str], rec_len: list[int],
            labels: list[tuple[int, int]]) -> EventTable:
    # One index per id space in first-seen order (sharers, then recipients), which
    # makes the indices (and so every seeded algorithm downstream) reproducible.
    # dict.fromkeys dedups and map(dict.__getitem__) looks up at C speed.
    uidx = _index(chain(sharers, rec_flat))
    sharer = np.fromiter(map(uidx.__getitem__, sharers), np.int32, len(sharers))
    rec = np.fromiter(map(uidx.__getitem__, rec_flat), np.int32, len(rec_flat))
    dev_names = [None if d is None else str(d) for d in devices]
    didx = _index(d for d in dev_names if d is not None)
    device = np.fromiter((MISSING if d is None else didx[d] for d in dev_names), np.int32, len(devices))
    cidx = _index(coupons)
    coupon = np.fromiter(map(cidx.__getitem__, coupons), np.int32, len(coupons))
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


def _index(ids: Iterable[str]) -> dict[str, int]:
    """Each distinct id -> its rank of first appearance."""
    keys = dict.fromkeys(ids)
    return dict(zip(keys, range(len(keys)), strict=True))


def _names(index: dict[str, int]) -> NDArray[np.object_]:
    arr = np.empty(len(index), dtype=object)
    arr[:] = list(index)
    return arr


def write_jsonl(rows: Iterable[Mapping[str, Any]], directory: str | os.PathLike[str], name: str) -> str:
    """Write ``rows`` as JSON lines to ``directory/name`` atomically; returns the path.

    The file is written under a temporary name and renamed, so a reader (the
    service's write-back, a second run) never sees half a file.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     pathlib.Path(write_jsonl([{"a": 1}, {"a": 2}], d, "x.jsonl")).read_text()
    '{"a":1}\\n{"a":2}\\n'
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)
    return path
