"""The batch job: events -> features -> cascades -> anomaly -> KOL -> rows -> files.

``run_score`` is the single entry the service's CLI calls
(``python -m riskservice score --input events.jsonl --output DIR``); it
writes ``DIR/scores.jsonl`` (one line per user and device, atomically) and
the report, and returns a summary.  ``score_events`` is the same without
files.

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
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from tqdm import tqdm

from graphs.anomaly import anomaly_scores
from graphs.cascade import propagation_by_user, reconstruct_cascades
from graphs.events import EventSource, EventTable, read_events
from graphs.features import max_over_links, node_features
from graphs.kol import kol_scores
from graphs.params import ScoringParams
from graphs.signal import Signal

#: signals shown in a row: any real anomaly evidence, but only strong KOL
#: evidence (every sharer has a little activity; listing it helps nobody)
SIGNAL_FLOOR = {"anomaly": 0.1, "kol": 0.5}
_LABEL_NAMES = {0: "legit", 1: "fraud"}


@dataclass
class ScoreResult:
    """Everything one scoring run computed, for the rows and for the report."""

    table: EventTable
    features: dict[str, Any]
    propagation: dict[str, NDArray[np.float64]]
    anomaly: dict[str, Any]
    kol: dict[str, Any]
    device_kol: NDArray[np.float64]
    timings: dict[str, float] = field(default_factory=dict)


def _stages(progress: bool) -> tqdm:
    # disable=None: tqdm turns itself off when stderr is not a terminal
    return tqdm(total=6, desc="scoring", unit="stage", disable=None if progress else True)


def score_table(t: EventTable, *, params: ScoringParams | None = None, seed: int = 0,
                progress: bool = False) -> ScoreResult:
    """Compute every score for already loaded events.

    Examples
    --------
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"]}])
    >>> r = score_table(t)
    >>> r.anomaly["user"].shape, r.kol["user"].shape
    ((2,), (2,))
    """
    p = params or ScoringParams()
    times: dict[str, float] = {}
    bar = _stages(progress)

    def step(name: str, t0: float) -> float:
        times[name] = time.perf_counter() - t0
        bar.set_postfix_str(name)
        bar.update(1)
        return time.perf_counter()

    t0 = time.perf_counter()
    f = node_features(t)
    t0 = step("features", t0)
    prop = propagation_by_user(t, reconstruct_cascades(t))
    t0 = step("cascades", t0)
    anom = anomaly_scores(t, f, p, seed=seed)
    t0 = step("anomaly", t0)
    kol = kol_scores(t, f, prop, anom["user"], p, seed=seed)
    t0 = step("kol", t0)
    dev_kol = max_over_links(f["DU_bin"], kol["user"])
    step("devices", t0)
    bar.close()
    return ScoreResult(t, f, prop, anom, kol, dev_kol, times)


def _signal_rows(signals: list[Signal], n: int) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in signals:
        idx = np.flatnonzero(s.score >= SIGNAL_FLOOR.get(s.family, 0.1))
        for i, row in zip(idx.tolist(), s.rows(idx), strict=True):
            out[i].append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r["family"], -r["score"]))
    return out


def _label_rows(labels: NDArray[np.int8]) -> dict[int, dict[str, Any]]:
    return {int(i): {"name": "analyst_label", "family": "label", "value": float(labels[i]),
                     "score": 0.0, "detail": f"labelled {_LABEL_NAMES[int(labels[i])]} by an analyst"}
            for i in np.flatnonzero(labels >= 0)}


def result_rows(r: ScoreResult) -> list[dict[str, Any]]:
    """One row per user and device: ``node``, ``kind``, ``kol``, ``anomaly``, ``signals``."""
    t = r.table
    rows: list[dict[str, Any]] = []
    for kind, names, kol, anom, sigs, labels in (
        ("user", t.users, r.kol["user"], r.anomaly["user"],
         r.anomaly["user_signals"] + r.kol["signals"], t.user_label),
        ("device", t.devices, r.device_kol, r.anomaly["device"], r.anomaly["device_signals"],
         t.device_label),
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
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "scores.jsonl")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)
    return path


def run_score(source: EventSource, output_dir: str | os.PathLike[str], progress: bool = True, *,
              params: ScoringParams | None = None, seed: int = 0, report: bool = True) -> dict[str, Any]:
    """Score and write files; see :func:`score_to_dir` (this returns its summary only)."""
    return score_to_dir(source, output_dir, progress, params=params, seed=seed, report=report)[0]


def score_to_dir(source: EventSource, output_dir: str | os.PathLike[str], progress: bool = True, *,
                 params: ScoringParams | None = None, seed: int = 0, report: bool = True,
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], EventTable]:
    """Score a JSONL file (or dicts) and write ``scores.jsonl`` and the report into ``output_dir``.

    Returns a summary (node counts, how many score above 0.5, stage
    timings, the top KOL and anomaly nodes, the paths written), the rows,
    and the event table (for callers that store adjacency too).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     s, rows, table = score_to_dir([{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"]}],
    ...                                   d, progress=False, report=False)
    >>> s["users"], s["devices"]
    (2, 0)
    """
    t0 = time.perf_counter()
    table = read_events(source, progress=progress)
    t_read = time.perf_counter() - t0
    res = score_table(table, params=params, seed=seed, progress=progress)
    t1 = time.perf_counter()
    rows = result_rows(res)
    path = write_scores(rows, output_dir)
    res.timings["read"] = t_read
    res.timings["write"] = time.perf_counter() - t1
    summary: dict[str, Any] = {
        "users": table.n_users, "devices": table.n_devices, "events": table.n_events,
        "edges": table.n_edges, "scores_path": path,
        "anomalous_users": int((res.anomaly["user"] >= 0.5).sum()),
        "anomalous_devices": int((res.anomaly["device"] >= 0.5).sum()),
        "top_kol": [table.users[i] for i in np.argsort(-res.kol["user"])[:10]],
        "top_anomaly": [table.users[i] for i in np.argsort(-res.anomaly["user"])[:10]],
    }
    if report:
        from graphs.report import write_report

        t2 = time.perf_counter()
        summary["report_path"] = write_report(res, rows, output_dir)
        res.timings["report"] = time.perf_counter() - t2
    summary["timings_s"] = {k: round(v, 3) for k, v in res.timings.items()}
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary, rows, table
