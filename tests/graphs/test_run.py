"""End to end: a generated workload through run_score, files, report and quality floors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from graphs.report.quality import quality
from graphs.run import run_score
from graphs.scorers.rows import score_events, write_scores
from graphs.workload.simulate import write_workload
from tests.graphs.helpers import share


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("workload")
    write_workload(d, 4000, seed=11)
    return d


def test_run_score_end_to_end(workload: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_score(str(workload / "events.jsonl"), out, progress=False)
    rows = [orjson.loads(x) for x in (out / "scores.jsonl").read_bytes().splitlines()]
    truth = [orjson.loads(x) for x in (workload / "truth.jsonl").read_bytes().splitlines()]
    # every user and device of the events, recipients included, exactly once
    assert {(r["kind"], r["node"]) for r in rows} == {(t["kind"], t["node"]) for t in truth}
    assert len(rows) == len(truth) == summary["users"] + summary["devices"]
    assert all(set(r) == {"node", "kind", "kol", "anomaly", "signals"} for r in rows)
    assert all(0.0 <= r["kol"] <= 1.0 and 0.0 <= r["anomaly"] <= 1.0 for r in rows)
    q = quality(rows, truth)
    assert q["missing"] == 0
    assert q["auc"] >= 0.95
    assert q["precision_at_k"] >= 0.8
    assert q["kol_capture"] >= 0.85
    assert min(q["recall_by_kind"].values()) >= 0.5
    html = (out / "report.html").read_text()
    for name in ("score_distributions.png", "suspicious_component.png"):
        assert (out / name).stat().st_size > 1000 and name in html
    assert "Top anomalous users" in html and "Top KOL users" in html


def test_scores_file_is_replaced_whole(tmp_path: Path) -> None:
    write_scores([{"node": "a"}], tmp_path)
    write_scores([{"node": "b"}, {"node": "c"}], tmp_path)
    assert (tmp_path / "scores.jsonl").read_bytes().splitlines() == [b'{"node":"b"}', b'{"node":"c"}']
    assert [p.name for p in tmp_path.iterdir()] == ["scores.jsonl"]


def test_analyst_labels_are_carried_not_learned() -> None:
    ev = [share("a", "c", 0, ["b"], label="fraud"), share("b", "c", 9, ["x"])]
    rows = {r["node"]: r for r in score_events(ev)}
    assert rows["a"]["signals"][-1] == {"name": "analyst_label", "family": "label", "value": 1.0,
                                        "score": 0.0, "detail": "labelled fraud by an analyst"}
    assert rows["a"]["anomaly"] == rows["b"]["anomaly"] == 0.0


def test_empty_input_scores_nothing(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("")
    s = run_score(str(tmp_path / "e.jsonl"), tmp_path / "o", progress=False)
    assert s["users"] == 0 and (tmp_path / "o" / "scores.jsonl").read_text() == ""
