from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from graphs.events.jsonl import read_events
from graphs.events.table import ALLOW, BLOCK, CHALLENGE, MISSING, EventFormatError
from tests.graphs.helpers import share


def test_interning_edges_and_attempts_from_dicts() -> None:
    t = read_events([
        share("a", "c1", 0, ["b", "c"], device="d1", claimed=1),
        share("b", "c1", 10, ["c", "e"], device="d1", decision="challenge"),
        share("a", "c2", 20, None, device=None, count=5, decision="block"),
    ])
    assert t.users.tolist() == ["a", "b", "c", "e"]
    assert t.devices.tolist() == ["d1", "dev-a"]
    assert t.coupons.tolist() == ["c1", "c2"]
    assert t.decision.tolist() == [ALLOW, CHALLENGE, BLOCK]
    # only the allowed share delivered; the challenged one is kept as an attempt
    assert list(zip(t.edge_src.tolist(), t.edge_dst.tolist(), strict=True)) == [(0, 1), (0, 2)]
    assert list(zip(t.attempt_src.tolist(), t.attempt_dst.tolist(), strict=True)) == [(1, 2), (1, 3)]
    assert t.n_recipients.tolist() == [2, 2, 5]
    assert t.claimed.tolist() == [1, MISSING, MISSING]


def test_jsonl_path_labels_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [share("a", "c", 0, ["b"], label="fraud"), share("b", "c", 5, ["a"], label="legit")]
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n\n")
    t = read_events(path)
    assert t.user_label.tolist() == [1, 0]
    assert t.device_label.tolist() == [1, 0]
    assert np.allclose(t.ts - t.ts[0], [0, 5])


def test_delivered_zero_carries_no_edge() -> None:
    ev = share("a", "c", 0, ["b"])
    ev["delivered"] = 0
    t = read_events([ev])
    assert t.n_edges == 0 and t.n_users == 2


def test_bad_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"user_id": "a", "coupon_id": "c", "ts": 1}\nnot json\n')
    with pytest.raises(EventFormatError, match="line 2"):
        read_events(path)
    with pytest.raises(EventFormatError, match="event 0"):
        read_events([{"user_id": "a", "ts": 1}])
