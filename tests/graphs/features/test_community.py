from __future__ import annotations

import networkx as nx
import numpy as np

from graphs.features.community import community_roles, label_propagation


def test_planted_cliques_are_recovered_and_seeded() -> None:
    g = nx.ring_of_cliques(6, 8)  # 6 cliques of 8 joined in a ring by single edges
    adj = nx.to_scipy_sparse_array(g, format="csr", dtype=float)
    labels = label_propagation(adj, seed=3)
    for k in range(6):
        assert len(set(labels[k * 8:(k + 1) * 8].tolist())) == 1
    assert len(set(labels.tolist())) == 6
    assert np.array_equal(labels, label_propagation(adj, seed=3))


def test_bridge_has_participation_and_hub_has_intra_degree() -> None:
    g = nx.Graph()
    g.add_edges_from((a, b) for a in range(5) for b in range(a + 1, 5))
    g.add_edges_from((a, b) for a in range(5, 10) for b in range(a + 1, 10))
    g.add_edges_from([(10, 0), (10, 5)])  # node 10 joins both circles
    adj = nx.to_scipy_sparse_array(g, nodelist=range(11), format="csr", dtype=float)
    labels = np.array([0] * 5 + [1] * 5 + [2])
    roles = community_roles(adj, labels)
    assert roles.participation[10] == 0.5 and roles.n_communities[10] == 2
    assert roles.participation[1] == 0.0
    assert roles.intra[0] == 4 and roles.intra[10] == 0
