"""The Spark engine gives the numpy engine's answers on the same simulated workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from pyspark.sql import SparkSession
from scipy.stats import spearmanr

from graphs.events.jsonl import read_events as read_numpy
from graphs.features.nodes import node_features
from graphs.report.quality import quality
from graphs.scorers.blocks import dense_block_signal
from graphs.scorers.receivers import pair_claims
from graphs.signals.params import ScoringParams
from tests.graphs.spark.conftest import read_rows

Rows = dict[tuple[str, str], dict[str, object]]


def _column(rows: Rows, keys: list[tuple[str, str]], field: str) -> np.ndarray:
    return np.array([rows[k][field] for k in keys], dtype=np.float64)


def test_same_nodes_same_scores(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    out, summary = spark_run
    rows = read_rows(out / "scores.jsonl")
    assert set(rows) == set(numpy_rows)
    assert summary["users"] + summary["devices"] == len(rows)
    users = sorted(k for k in rows if k[0] == "user")
    for field in ("anomaly", "kol"):
        rho = spearmanr(_column(rows, users, field), _column(numpy_rows, users, field)).statistic
        assert rho >= 0.99, field
    flagged_spark = {k for k, r in rows.items() if r["anomaly"] >= 0.5}
    flagged_numpy = {k for k, r in numpy_rows.items() if r["anomaly"] >= 0.5}
    assert flagged_numpy and len(flagged_spark & flagged_numpy) / len(flagged_spark | flagged_numpy) >= 0.98


def test_same_quality_against_the_truth(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows,
                                        workload: Path) -> None:
    truth = [orjson.loads(x) for x in (workload / "truth.jsonl").read_bytes().splitlines()]
    spark_q = quality(list(read_rows(spark_run[0] / "scores.jsonl").values()), truth)
    numpy_q = quality(list(numpy_rows.values()), truth)
    assert spark_q["missing"] == numpy_q["missing"] == 0
    assert abs(spark_q["auc"] - numpy_q["auc"]) <= 0.01
    assert numpy_q["auc"] >= 0.95


def test_rows_carry_the_same_signals(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    rows = read_rows(spark_run[0] / "scores.jsonl")
    same = sum(rows[k]["signals"] == numpy_rows[k]["signals"] for k in rows)
    assert same / len(rows) >= 0.95
    farm = next(r for r in rows.values() if any(s["name"] == "device_farm" for s in r["signals"]))  # type: ignore[union-attr]
    key = (farm["kind"], farm["node"])
    assert farm["signals"][0]["detail"] == numpy_rows[key]["signals"][0]["detail"]  # type: ignore[index]


def test_parquet_output_holds_the_rows(spark_run: tuple[Path, dict[str, object]], spark: SparkSession) -> None:
    out = spark_run[0]
    table = spark.read.parquet(str(out / "scores.parquet"))
    assert table.columns == ["node", "kind", "kol", "anomaly", "signals"]
    rows = read_rows(out / "scores.jsonl")
    got = {(r["kind"], r["node"]): (r["kol"], r["anomaly"]) for r in table.collect()}
    assert got == {k: (r["kol"], r["anomaly"]) for k, r in rows.items()}


def test_receiver_and_lockstep_signals_agree(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    """Hoarders, feeders and (two-scale, crowd-weighted, associated) lockstep: the same entries on both engines."""
    rows = read_rows(spark_run[0] / "scores.jsonl")
    names = ("hoarder", "feeder", "lockstep")

    def entries(r: Rows) -> dict[tuple[tuple[str, str], str], object]:
        return {(k, s["name"]): s for k, row in r.items() for s in row["signals"]  # type: ignore[attr-defined]
                if s["name"] in names}

    got, want = entries(rows), entries(numpy_rows)
    assert {name for _, name in want} == set(names)
    assert got == want


def signal_entries(rows: Rows, name: str) -> dict[object, object]:
    """Each node's entry of one signal."""
    return {k: s for k, row in rows.items() for s in row["signals"]  # type: ignore[attr-defined]
            if s["name"] == name}


def test_closed_groups_agree(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    """Closed groups: the cluster's taint leaves the same groups for numpy to find, entry for entry."""
    want = signal_entries(numpy_rows, "closed_group")
    assert len(want) >= 10  # the mixed workload holds rings nobody shares into
    assert signal_entries(read_rows(spark_run[0] / "scores.jsonl"), "closed_group") == want


def test_low_claim_signals_agree(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    """Low claims, named shares and broadcasts judged apart: the same entries on both engines."""
    want = signal_entries(numpy_rows, "low_claim_rate")
    assert len(want) >= 5  # the workload holds spammers of named friends
    assert signal_entries(read_rows(spark_run[0] / "scores.jsonl"), "low_claim_rate") == want


def test_dense_blocks_agree(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows, workload: Path) -> None:
    """FRAUDAR's blocks: the same entries on both engines, on a workload where
    the peel's ties decide them (the Spark driver numbers the peel's nodes as
    the numpy reader does, graphs.spark.dense.numpy_order)."""
    want = signal_entries(numpy_rows, "dense_block")
    assert want
    # (the workload must keep ties that decide a block, or this test proves nothing:
    # the same graph with its users numbered by id gives other blocks)
    t = read_numpy(str(workload / "events.jsonl"))
    f = node_features(t)
    claims = pair_claims(t)
    by_id = np.argsort(t.users.astype(str), kind="stable")
    p = ScoringParams()
    other = dense_block_signal(sp.csr_matrix(f.share[by_id][:, by_id]), p.dense_density, p.dense_closure,
                               max_blocks=p.dense_max_blocks, min_side=p.dense_min_side, patience=p.dense_patience,
                               max_share=p.dense_max_share, claims=sp.csr_matrix(claims[by_id][:, by_id]),
                               reach=(*p.dense_reach, p.dense_reach_claim))
    assert {str(u) for u in t.users[by_id][other.score > 0]} != {node for _, node in want}
    assert signal_entries(read_rows(spark_run[0] / "scores.jsonl"), "dense_block") == want
