"""Quality of scores against a simulator's ground truth (benchmarks and tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

__all__ = ["quality", "roc_auc"]


def roc_auc(labels: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half).

    Examples
    --------
    >>> roc_auc(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def quality(rows: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, Any]],
            kol_top: float = 0.05) -> dict[str, Any]:
    """Anomaly AUC, precision at k, recall per fraud kind, look-alike false positives, KOL capture.

    ``k`` is the number of fraud nodes; a node is caught when it is in the
    top ``k`` by anomaly.  Organic look-alikes (truth rows with an
    ``organic_kind``) report their share in the top ``k`` and at anomaly
    0.5 or more, per sub-kind.  KOL capture is the true secondary propagation of
    the top ``kol_top`` users by KOL over that of the best possible set of the
    same size; the out-degree ranking is reported for comparison.

    Examples
    --------
    >>> rows = [{"node": "a", "kind": "user", "kol": 0.9, "anomaly": 0.9, "signals": []},
    ...         {"node": "b", "kind": "user", "kol": 0.1, "anomaly": 0.1, "signals": []}]
    >>> truth = [{"node": "a", "kind": "user", "fraud": True, "fraud_kind": "star", "secondary": 0},
    ...          {"node": "b", "kind": "user", "fraud": False, "fraud_kind": None, "secondary": 3}]
    >>> q = quality(rows, truth)
    >>> q["auc"], q["precision_at_k"], q["recall_by_kind"]["star"]
    (1.0, 1.0, 1.0)
    """
    by = {(r["kind"], r["node"]): r for r in rows}
    missing = [k for k in ((t["kind"], t["node"]) for t in truth) if k not in by]
    keys = [(t["kind"], t["node"]) for t in truth if (t["kind"], t["node"]) in by]
    tr = {(t["kind"], t["node"]): t for t in truth}
    fraud = np.array([bool(tr[k]["fraud"]) for k in keys])
    kinds = np.array([tr[k]["fraud_kind"] or "" for k in keys], dtype=object)
    anom = np.array([by[k]["anomaly"] for k in keys], dtype=np.float64)
    k = int(fraud.sum())
    # ties at the cut are broken against us: a stable sort on -score keeps input order
    top = np.zeros(fraud.size, bool)
    top[np.argsort(-anom, kind="stable")[:k]] = True
    recall = {str(kd): float(top[kinds == kd].mean()) for kd in sorted(set(kinds) - {""})}
    recall_05 = {str(kd): float((anom[kinds == kd] >= 0.5).mean()) for kd in sorted(set(kinds) - {""})}
    users = [i for i, key in enumerate(keys) if key[0] == "user"]
    sec = np.array([tr[keys[i]]["secondary"] for i in users], dtype=np.float64)
    kol = np.array([by[keys[i]]["kol"] for i in users], dtype=np.float64)
    m = max(1, round(kol_top * len(users)))
    best = np.sort(sec)[::-1][:m].sum()
    got = sec[np.argsort(-kol, kind="stable")[:m]].sum()
    organic_kinds = np.array([(tr[k].get("organic_kind") or "") for k in keys], dtype=object)
    lookalike = {str(ok): float(top[organic_kinds == ok].mean()) for ok in sorted(set(organic_kinds) - {""})}
    lookalike_05 = {str(ok): float((anom[organic_kinds == ok] >= 0.5).mean())
                    for ok in sorted(set(organic_kinds) - {""})}
    out: dict[str, Any] = {
        "nodes": len(keys), "missing": len(missing), "fraud_nodes": k,
        "auc": roc_auc(fraud, anom), "precision_at_k": float(fraud[top].mean()) if k else float("nan"),
        "recall_by_kind": recall, "recall_at_0.5_by_kind": recall_05,
        "false_positive_rate_at_0.5": float((anom[~fraud] >= 0.5).mean()),
        "false_positive_rate_at_k": float(top[~fraud].mean()) if (~fraud).any() else float("nan"),
        "lookalike_fpr_at_k": lookalike, "lookalike_fpr_at_0.5": lookalike_05,
        "kol_capture": float(got / best) if best > 0 else float("nan"),
        "kol_top_share_of_all": float(got / sec.sum()) if sec.sum() > 0 else float("nan"),
    }
    return out
