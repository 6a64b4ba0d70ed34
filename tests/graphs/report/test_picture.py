"""The report's neighbourhood picture stays capped around a hub."""

from __future__ import annotations

from graphs.events.jsonl import read_events
from graphs.report.picture import neighbourhood_graph
from tests.graphs.helpers import share


def test_neighbourhood_is_capped_around_a_hub() -> None:
    t = read_events([share("hub", f"c{i}", i, [f"f{j}" for j in range(i * 10, i * 10 + 10)], device="dh")
                     for i in range(100)])
    g = neighbourhood_graph(t, [("device", "dh")], hops=2, max_nodes=50)
    assert g.number_of_nodes() == 50
    assert ("device", "dh") in g and ("user", "hub") in g
    assert g.edges[("device", "dh"), ("user", "hub")]["weight"] == 100.0
    assert {d["kind"] for _, d in g.nodes(data=True)} == {"user", "device"}
    assert {d["kind"] for _, _, d in g.edges(data=True)} == {"share", "device"}


def test_neighbourhood_of_unknown_node_is_empty() -> None:
    t = read_events([share("a", "c", 0, ["b"])])
    assert neighbourhood_graph(t, [("user", "nobody")]).number_of_nodes() == 0
