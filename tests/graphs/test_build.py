from __future__ import annotations

from graphs.build import device_user_matrix, graph_to_json, neighbourhood_graph, share_matrix
from graphs.events import read_events
from tests.graphs.helpers import share


def test_share_and_device_matrices_count_deliveries_and_attempts() -> None:
    t = read_events([share("a", "c1", 0, ["b"], device="d"), share("a", "c2", 1, ["b", "c"], device="d"),
                     share("b", "c1", 2, ["a"], device="d", decision="block")])
    assert share_matrix(t).toarray().tolist() == [[0, 2, 1], [0, 0, 0], [0, 0, 0]]
    assert device_user_matrix(t).toarray().tolist() == [[2, 1, 0]]


def test_neighbourhood_is_capped_around_a_hub() -> None:
    t = read_events([share("hub", f"c{i}", i, [f"f{j}" for j in range(i * 10, i * 10 + 10)], device="dh")
                     for i in range(100)])
    g = neighbourhood_graph(t, [("device", "dh")], hops=2, max_nodes=50)
    assert g.number_of_nodes() == 50
    assert ("device", "dh") in g and ("user", "hub") in g
    assert g.edges[("device", "dh"), ("user", "hub")]["weight"] == 100.0
    js = graph_to_json(g)
    assert {n["kind"] for n in js["nodes"]} == {"user", "device"}
    assert all(e["source_kind"] in ("user", "device") for e in js["edges"])


def test_neighbourhood_of_unknown_node_is_empty() -> None:
    t = read_events([share("a", "c", 0, ["b"])])
    assert neighbourhood_graph(t, [("user", "nobody")]).number_of_nodes() == 0
