"""The numpy PageRank against networkx's, and the influence signal it feeds."""

from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp

from graphs.events.jsonl import read_events
from graphs.features.cascade import propagation_by_user
from graphs.features.nodes import node_features
from graphs.features.pagerank import pagerank
from graphs.scorers.kol import kol_scores
from graphs.signals.params import ScoringParams
from tests.graphs.helpers import share


def small_graph() -> nx.DiGraph:
    """Weighted links, a self-link, two dangling nodes (5, 6) and an isolated one (7)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(8))
    g.add_weighted_edges_from([(0, 1, 3.0), (0, 2, 1.0), (1, 2, 2.0), (2, 0, 1.0), (2, 3, 4.0), (3, 3, 1.0),
                               (3, 4, 2.0), (4, 0, 1.0), (4, 5, 5.0), (1, 6, 1.0)])
    return g


def test_same_ranks_as_networkx_with_weights_and_dangling_nodes() -> None:
    g = small_graph()
    m = nx.to_scipy_sparse_array(g, nodelist=range(8), format="csr", weight="weight")
    mine = pagerank(sp.csr_matrix(m), damping=0.85, max_iter=1000, tol=1e-14)
    ref = nx.pagerank(g, alpha=0.85, weight="weight", max_iter=1000, tol=1e-14)
    assert np.abs(mine - np.array([ref[i] for i in range(8)])).max() < 1e-6
    assert abs(mine.sum() - 1.0) < 1e-12
    # the dangling nodes' rank went everywhere: the isolated node holds more than the teleport alone
    assert mine[7] > 0.15 / 8


def test_few_rounds_stop_early_without_error() -> None:
    m = nx.to_scipy_sparse_array(small_graph(), nodelist=range(8), format="csr", weight="weight")
    one = pagerank(sp.csr_matrix(m), max_iter=1)
    assert abs(one.sum() - 1.0) < 1e-12
    assert pagerank(sp.csr_matrix((0, 0))).size == 0


def test_influence_follows_the_reach_of_recipients() -> None:
    """'deep' shares to 3 who each share to 6; 'wide' shares to 6 who share to nobody."""
    ev = [share("deep", "c", 0, ["r0", "r1", "r2"])]
    ev += [share(f"r{i}", "c", 10, [f"s{i}{j}" for j in range(6)]) for i in range(3)]
    ev += [share("wide", "d", 0, [f"w{j}" for j in range(6)])]
    t = read_events(ev)
    converged = ScoringParams(pagerank_iter=1000, pagerank_tol=1e-14)
    k = kol_scores(t, node_features(t), propagation_by_user(t), params=converged)
    sig = {s.name: s for s in k.signals}["influence"]
    users = t.users.tolist()
    g = nx.DiGraph()
    g.add_nodes_from(range(t.n_users))
    f = node_features(t)
    src, dst = f.share.nonzero()
    g.add_weighted_edges_from((int(d), int(s), float(f.share[s, d])) for s, d in zip(src, dst, strict=True))
    ref = nx.pagerank(g, alpha=0.85, weight="weight", max_iter=1000, tol=1e-14)
    # value = rank relative to the average user, over the reversed links weighted by deliveries
    assert np.abs(sig.value / t.n_users - np.array([ref[i] for i in range(t.n_users)])).max() < 1e-6
    assert sig.value[users.index("deep")] > sig.value[users.index("wide")]
    assert sig.score[users.index("deep")] == 1.0
