"""Cases from a scoring run: flagged nodes that belong together, as connected groups.

The case graph holds the flagged users and devices (anomaly at least
``threshold``) and the ties of :mod:`graphs.cases.ties` between them; each
connected group with at least ``min_users`` users is a case. The group is cut
into per-case slices of the event and edge arrays once (one sort per array),
then each case is described by :mod:`graphs.cases.describe`.

A case has no id here: ids are given when cases are written back, by
matching them to the cases already stored (``riskservice/cases/match.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from graphs.cases.describe import describe
from graphs.cases.parts import CaseParts
from graphs.cases.ties import CaseTies, case_ties, pull_sinks
from graphs.events.table import EventTable
from graphs.scorers.score import ScoreResult

__all__ = ["CaseParams", "NodeScores", "build_cases", "cases_of"]

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class CaseParams:
    """How cases are cut.

    ``threshold``: anomaly from which a node is flagged (the review queue's
    threshold by default); ``min_users``: users a group needs to be a case
    (a single account is the device queue's business); ``evidence``:
    evidence edges kept per case; ``subgraph_nodes``/``subgraph_edges``:
    the drawing's cap.
    """

    threshold: float = 0.5
    min_users: int = 2
    lockstep_window_s: float = 60.0
    sink_min_senders: int = 3
    evidence: int = 200
    subgraph_nodes: int = 150
    subgraph_edges: int = 400


@dataclass(frozen=True)
class NodeScores:
    """What the cases need per node of a table besides its events, each over its users or devices.

    ``senders`` counts each user's distinct senders in the whole graph: a
    recipient joins a group as a sink only if the group's senders are half
    of them or more, so a table that holds only part of the graph (the Spark
    engine's slice) must bring the whole graph's counts.
    """

    user_anomaly: Floats
    device_anomaly: Floats
    user_kol: Floats
    device_kol: Floats
    senders: Ints


class _Slices:
    """Positions of an array grouped by a label: ``take(label)`` gives that label's positions."""

    def __init__(self, labels: Ints) -> None:
        self.order = np.argsort(labels, kind="stable")
        ordered = labels[self.order]
        self.keys, self.starts = np.unique(ordered, return_index=True)
        self.ends = np.append(self.starts[1:], ordered.size)

    def take(self, label: int) -> Ints:
        i = int(np.searchsorted(self.keys, label))
        if i == self.keys.size or self.keys[i] != label:
            return np.zeros(0, np.int64)
        return self.order[self.starts[i]:self.ends[i]].astype(np.int64)


def _components(n_users: int, n_devices: int, ties: CaseTies, t_src: Ints, t_dst: Ints) -> Ints:
    n = n_users + n_devices
    dev, usr, _ = ties.device_pairs
    la, lb = ties.lockstep_pairs
    rows = np.concatenate([t_src[ties.share_edge], n_users + dev, la])
    cols = np.concatenate([t_dst[ties.share_edge], usr, lb])
    g = sp.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    return np.asarray(lab, dtype=np.int64)


def build_cases(res: ScoreResult, params: CaseParams | None = None) -> list[dict[str, Any]]:
    """The cases of one scoring run, worst first.

    Each case is ``{"kind", "score", "summary", "members", "stats",
    "evidence", "subgraph"}``; members are ``{"node", "kind", "anomaly",
    "kol"}`` with the node ids and kinds of ``scores.jsonl``.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.scorers.score import score_table
    >>> farm = [{"user_id": f"u{i}", "device_id": "phone", "coupon_id": "cp_1", "ts": 60.0 * i,
    ...          "recipients": [f"r{i}"]} for i in range(12)]
    >>> cases = build_cases(score_table(read_events(farm)))
    >>> [(c["kind"], len(c["members"])) for c in cases]
    [('farm', 13)]
    >>> cases[0]["summary"]
    '12 accounts on 1 device sharing coupon cp_1 to 12 recipients within 11 min'
    """
    # distinct senders per recipient: the column counts of the binary share matrix already built
    senders = np.bincount(res.features.share_bin.indices, minlength=res.table.n_users).astype(np.int64)
    scores = NodeScores(res.anomaly.user, res.anomaly.device, res.kol.user, res.device_kol, senders)
    return cases_of(res.table, scores, params)


def cases_of(t: EventTable, s: NodeScores, params: CaseParams | None = None) -> list[dict[str, Any]]:
    """The cases of the events ``t`` with the node scores ``s``, worst first (see :func:`build_cases`).

    ``t`` may hold only part of a graph (the Spark engine's slice,
    :mod:`graphs.spark.cases`): every event of every flagged user and of
    every user that may join a group as a sink, with the delivered edges of
    the flagged users, its ids in the whole graph's first-seen order; ``s``
    then carries the whole graph's sender counts.
    """
    p = params or CaseParams()
    nu, nd = t.n_users, t.n_devices
    user_flag = s.user_anomaly >= p.threshold
    device_flag = s.device_anomaly >= p.threshold
    ties = case_ties(t, user_flag, device_flag, lockstep_window_s=p.lockstep_window_s)
    src, dst = t.edge_src.astype(np.int64), t.edge_dst.astype(np.int64)
    lab = _components(nu, nd, ties, src, dst)
    sinks, sink_group, sink_edges = pull_sinks(t, user_flag, lab, p.sink_min_senders, s.senders)
    lab[sinks] = sink_group
    share_edge = np.concatenate([ties.share_edge, sink_edges])
    member = np.concatenate([user_flag, device_flag])
    member[sinks] = True
    users_per = np.bincount(lab[:nu][member[:nu]], minlength=nu + nd)
    linked = np.zeros(nu + nd, bool)  # a group needs a tie: isolated flagged users are not cases
    linked[lab[src[share_edge]]] = True
    linked[lab[nu + ties.device_pairs[0]]] = True
    linked[lab[ties.lockstep_pairs[0]]] = True
    kept = np.flatnonzero((users_per >= p.min_users) & linked)
    if kept.size == 0:
        return []
    nodes = _Slices(np.where(member, lab, -1))
    inner = _Slices(lab[src[share_edge]])
    devs = _Slices(lab[nu + ties.device_pairs[0]])
    locks = _Slices(lab[ties.lockstep_pairs[0]])
    events = _Slices(np.where(member[t.sharer], lab[t.sharer], -1))
    out_edges = _Slices(np.where(user_flag[src], lab[src], -1))
    scores = np.concatenate([s.user_anomaly, s.device_anomaly])
    kols = np.concatenate([s.user_kol, s.device_kol])
    names = np.concatenate([t.users, t.devices])
    cases = []
    for c in kept.tolist():
        d = devs.take(c)
        parts = CaseParts(
            nodes=nodes.take(c), share_edges=share_edge[inner.take(c)],
            device_pairs=tuple(a[d] for a in ties.device_pairs),  # type: ignore[arg-type]
            lockstep=tuple(a[locks.take(c)] for a in ties.lockstep_pairs),  # type: ignore[arg-type]
            events=events.take(c), out_edges=out_edges.take(c))
        cases.append(describe(t, parts, names, scores, kols, p))
    cases.sort(key=lambda case: (-case["score"], case["members"][0]["node"]))
    return cases
