"""The neighbourhood's JSON form, on the service side (no batch library needed)."""

from __future__ import annotations

from riskservice.review.graph_json import DEVICE, USER, SubGraph, graph_to_json


def test_nodes_and_edges_keep_kind_id_and_attributes() -> None:
    g = SubGraph()
    g.add_node((DEVICE, "d1"), kind=DEVICE, label="d1", hop=0, anomaly=0.9)
    g.add_node((USER, "u1"), kind=USER, label="u1", hop=1, anomaly=None)
    g.add_edge((DEVICE, "d1"), (USER, "u1"), kind="device", weight=3.0)
    assert graph_to_json(g) == {
        "nodes": [{"id": "d1", "kind": "device", "hop": 0, "anomaly": 0.9},
                  {"id": "u1", "kind": "user", "hop": 1, "anomaly": None}],
        "edges": [{"source": "d1", "source_kind": "device", "target": "u1", "target_kind": "user",
                   "kind": "device", "weight": 3.0}],
    }


def test_an_empty_graph_is_empty_lists() -> None:
    assert graph_to_json(SubGraph()) == {"nodes": [], "edges": []}
