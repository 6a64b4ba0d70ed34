"""The batch job on one machine: events file -> scores.jsonl and the report.

``run_score`` is the entry the service's CLI calls
(``python -m riskservice score --input events.jsonl --output DIR``); it
writes ``DIR/scores.jsonl`` (one line per user and device, atomically) and
the report, and returns a summary.  This module sits above the scorers and
the report, so neither imports the other.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from graphs.cases.build import CaseParams, build_cases
from graphs.cases.files import write_cases
from graphs.events.jsonl import read_events
from graphs.events.table import EventSource, EventTable
from graphs.scorers.rows import result_rows, write_scores
from graphs.scorers.score import score_table
from graphs.signals.params import ScoringParams

__all__ = ["run_score", "score_to_dir"]


def run_score(source: EventSource, output_dir: str | os.PathLike[str], progress: bool = True, *,
              params: ScoringParams | None = None, seed: int = 0, report: bool = True,
              cases: CaseParams | None = None) -> dict[str, Any]:
    """Score and write files; see :func:`score_to_dir` (this returns its summary only)."""
    return score_to_dir(source, output_dir, progress, params=params, seed=seed, report=report, cases=cases)[0]


def score_to_dir(source: EventSource, output_dir: str | os.PathLike[str], progress: bool = True, *,
                 params: ScoringParams | None = None, seed: int = 0, report: bool = True,
                 cases: CaseParams | None = None) -> tuple[dict[str, Any], list[dict[str, Any]], EventTable]:
    """Score a JSONL file (or dicts) and write ``scores.jsonl``, ``cases.jsonl`` and the report into
    ``output_dir``.

    ``cases`` tunes how flagged nodes are grouped into cases
    (:mod:`graphs.cases.build`); the write-back stores them with the scores.

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
    t_cases = time.perf_counter()
    case_list = build_cases(res, cases)
    cases_path = write_cases(case_list, output_dir)
    res.timings["cases"] = time.perf_counter() - t_cases
    summary: dict[str, Any] = {
        "users": table.n_users, "devices": table.n_devices, "events": table.n_events,
        "edges": table.n_edges, "scores_path": path, "cases": len(case_list), "cases_path": cases_path,
        "anomalous_users": int((res.anomaly.user >= 0.5).sum()),
        "anomalous_devices": int((res.anomaly.device >= 0.5).sum()),
        "top_kol": [table.users[i] for i in np.argsort(-res.kol.user)[:10]],
        "top_anomaly": [table.users[i] for i in np.argsort(-res.anomaly.user)[:10]],
    }
    if report:
        from graphs.report.html import write_report  # matplotlib only when a report is wanted

        t2 = time.perf_counter()
        summary["report_path"] = write_report(res, rows, output_dir)
        res.timings["report"] = time.perf_counter() - t2
    summary["timings_s"] = {k: round(v, 3) for k, v in res.timings.items()}
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary, rows, table
