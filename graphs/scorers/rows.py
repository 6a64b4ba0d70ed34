"""Score rows: one per user and device, with the signals an analyst reads; and the scores file.

A row is ``{"node", "kind", "kol", "anomaly", "signals"}``.  Each signal is
``{"name", "family", "value", "score", "detail"}``: ``family`` is
``"anomaly"``, ``"kol"`` or ``"label"`` (an analyst label, carried through,
never learned from), ``value`` the raw measure, ``score`` its contribution
in [0, 1] and ``detail`` one sentence for an analyst.  Anomaly signals are
listed from 0.1, KOL signals from 0.5.  A device's KOL is the best KOL of
the accounts that used it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.events.jsonl import read_events, write_jsonl
from graphs.events.table import EventSource
from graphs.scorers.score import ScoreResult, score_table
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["LABEL_NAMES", "SIGNAL_FLOOR", "label_entry", "result_rows", "score_events", "sort_entries",
           "write_scores"]

#: signals shown in a row: any real anomaly evidence, but only strong KOL
#: evidence (every sharer has a little activity; listing it helps nobody)
SIGNAL_FLOOR = {"anomaly": 0.1, "kol": 0.5}
LABEL_NAMES = {0: "legit", 1: "fraud"}


def _signal_rows(signals: list[Signal], n: int) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in signals:
        idx = np.flatnonzero(s.score >= SIGNAL_FLOOR.get(s.family, 0.1))
        for i, row in zip(idx.tolist(), s.rows(idx), strict=True):
            out[i].append(row)
    return {i: (rows if len(rows) == 1 else sort_entries(rows)) for i, rows in out.items()}


def label_entry(code: int) -> dict[str, Any]:
    """The row entry of an analyst label (``code`` 0 legit, 1 fraud); both engines use it.

    Examples
    --------
    >>> label_entry(1)["detail"]
    'labelled fraud by an analyst'
    """
    return {"name": "analyst_label", "family": "label", "value": float(code), "score": 0.0,
            "detail": f"labelled {LABEL_NAMES[code]} by an analyst"}


def sort_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signal entries in row order: by family, strongest first (both engines use it)."""
    return sorted(entries, key=lambda r: (r["family"], -r["score"]))


def _label_rows(labels: NDArray[np.int8]) -> dict[int, dict[str, Any]]:
    return {int(i): label_entry(int(labels[i])) for i in np.flatnonzero(labels >= 0)}


def result_rows(r: ScoreResult) -> list[dict[str, Any]]:
    """One row per user and device: ``node``, ``kind``, ``kol``, ``anomaly``, ``signals``."""
    t = r.table
    rows: list[dict[str, Any]] = []
    for kind, names, kol, anom, sigs, labels in (
        ("user", t.users, r.kol.user, r.anomaly.user, r.anomaly.user_signals + r.kol.signals, t.user_label),
        ("device", t.devices, r.device_kol, r.anomaly.device, r.anomaly.device_signals, t.device_label),
    ):
        per_node = _signal_rows(sigs, len(names))
        lab = _label_rows(labels)
        kol_l = np.round(kol, 6).tolist()
        anom_l = np.round(anom, 6).tolist()
        for i, name in enumerate(names.tolist()):
            sig = per_node.get(i, [])
            if i in lab:
                sig = [*sig, lab[i]]
            rows.append({"node": name, "kind": kind, "kol": kol_l[i], "anomaly": anom_l[i],
                         "signals": sig})
    return rows


def score_events(events: EventSource, *, params: ScoringParams | None = None, seed: int = 0,
                 progress: bool = False) -> list[dict[str, Any]]:
    """Score every user and device appearing in ``events`` (a JSONL path or dicts).

    Examples
    --------
    >>> rows = score_events([{"user_id": "a", "device_id": "d", "coupon_id": "c", "ts": 0,
    ...                       "recipients": ["b"], "decision": "allow"}])
    >>> [(r["node"], r["kind"]) for r in rows]
    [('a', 'user'), ('b', 'user'), ('d', 'device')]
    >>> sorted(rows[0])
    ['anomaly', 'kind', 'kol', 'node', 'signals']
    """
    return result_rows(score_table(read_events(events), params=params, seed=seed, progress=progress))


def write_scores(rows: Iterable[Mapping[str, Any]], directory: str | os.PathLike[str]) -> str:
    """Write ``DIR/scores.jsonl`` atomically (temporary file, then rename); return its path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_scores([{"node": "a", "kind": "user", "kol": 0.0, "anomaly": 0.0,
    ...                           "signals": []}], d)
    ...     pathlib.Path(path).read_text().count("\\n")
    1
    """
    return write_jsonl(rows, directory, "scores.jsonl")
