"""The share and device matrices count deliveries and attempts."""

from __future__ import annotations

from graphs.events.jsonl import read_events
from graphs.features.matrices import device_user_matrix, share_matrix
from tests.graphs.helpers import share


def test_share_and_device_matrices_count_deliveries_and_attempts() -> None:
    t = read_events([share("a", "c1", 0, ["b"], device="d"), share("a", "c2", 1, ["b", "c"], device="d"),
                     share("b", "c1", 2, ["a"], device="d", decision="block")])
    assert share_matrix(t).toarray().tolist() == [[0, 2, 1], [0, 0, 0], [0, 0, 0]]
    assert device_user_matrix(t).toarray().tolist() == [[2, 1, 0]]
