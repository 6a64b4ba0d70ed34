"""FRAUDAR's dense blocks on Spark: the numpy engine's blocks, node for node, where ties decide them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pyspark.sql import SparkSession

from graphs.events.jsonl import read_events as read_numpy
from graphs.features.nodes import node_features
from graphs.scorers.blocks import dense_block_signal
from graphs.scorers.receivers import pair_claims
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal
from graphs.spark.dense import dense_blocks
from graphs.spark.features import node_features as spark_features
from graphs.spark.read import read_events
from graphs.spark.receivers import pair_claims as spark_pair_claims
from graphs.workload.simulate import write_workload

Entries = dict[str, tuple[float, ...]]


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """425 events whose dense block depends on how equal priorities are broken in the peel."""
    d = tmp_path_factory.mktemp("dense-ties")
    write_workload(d, 300, seed=17, profile="default")
    return d / "events.jsonl"


def _signal(share: sp.csr_matrix, claims: sp.csr_matrix, p: ScoringParams) -> Signal:
    return dense_block_signal(share, p.dense_density, p.dense_closure, max_blocks=p.dense_max_blocks,
                              min_side=p.dense_min_side, patience=p.dense_patience, max_share=p.dense_max_share,
                              claims=claims, reach=(*p.dense_reach, p.dense_reach_claim))


def _entries(sig: Signal, names: np.ndarray) -> Entries:
    return {str(names[i]): (float(sig.value[i]), float(sig.score[i]), float(sig.extra["rank"][i]),
                            float(sig.extra["size"][i]), float(sig.extra["closure"][i]))
            for i in np.flatnonzero(sig.score > 0)}


def test_spark_finds_the_numpy_blocks_where_ties_decide_them(spark: SparkSession, tied: Path) -> None:
    p = ScoringParams()
    t = read_numpy(str(tied))
    f = node_features(t)
    claims = pair_claims(t)
    want = _entries(_signal(f.share, claims, p), t.users)
    # the same graph with the users numbered by id (what the Spark driver did): another block wins
    by_id = np.argsort(t.users.astype(str), kind="stable")
    other = _entries(_signal(sp.csr_matrix(f.share[by_id][:, by_id]), sp.csr_matrix(claims[by_id][:, by_id]), p),
                     t.users[by_id])
    assert want and len(other) > 2 * len(want), "the workload no longer holds ties that decide a block"
    ev = read_events(spark, str(tied))
    rows = dense_blocks(spark, spark_features(ev).share, p, spark_pair_claims(ev), ev).collect()
    assert {r["id"]: tuple(r[1:]) for r in rows} == want
