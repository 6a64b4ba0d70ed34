"""The Spark PageRank and influence signal give the numpy engine's values on the test workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from graphs.events.jsonl import read_events as read_table
from graphs.features.nodes import node_features as numpy_features
from graphs.features.pagerank import pagerank as numpy_pagerank
from graphs.signals.params import ScoringParams
from graphs.spark.features import node_features
from graphs.spark.pagerank import pagerank
from graphs.spark.read import read_events
from tests.graphs.spark.conftest import read_rows

Rows = dict[tuple[str, str], dict[str, object]]


def test_pagerank_over_reversed_shares_matches_numpy(spark: SparkSession, workload: Path) -> None:
    p = ScoringParams()
    t = read_table(str(workload / "events.jsonl"))
    want = numpy_pagerank(numpy_features(t).share.T, p.pagerank_damping, p.pagerank_iter, p.pagerank_tol)
    f = node_features(read_events(spark, str(workload / "events.jsonl")))
    reversed_share = f.share.select(F.col("dst").alias("src"), F.col("src").alias("dst"), "w")
    # checkpoint every 2 rounds here, so the test crosses several checkpoints
    got = pagerank(f.users.select("id"), reversed_share, damping=p.pagerank_damping, max_iter=p.pagerank_iter,
                   tol=p.pagerank_tol, checkpoint_every=2)
    ranks = {r["id"]: r["rank"] for r in got.collect()}
    assert set(ranks) == set(t.users.tolist())
    assert np.abs(np.array([ranks[u] for u in t.users]) - want).max() < 1e-12
    assert abs(sum(ranks.values()) - 1.0) < 1e-9


def test_influence_entries_agree(spark_run: tuple[Path, dict[str, object]], numpy_rows: Rows) -> None:
    rows = read_rows(spark_run[0] / "scores.jsonl")

    def influence(r: Rows) -> dict[tuple[str, str], object]:
        return {k: s for k, row in r.items() for s in row["signals"]  # type: ignore[attr-defined]
                if s["name"] == "influence"}

    spark_inf, numpy_inf = influence(rows), influence(numpy_rows)
    assert numpy_inf and set(spark_inf) == set(numpy_inf)
    assert spark_inf == numpy_inf
