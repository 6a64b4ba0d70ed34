"""The Spark engine's fake sinks agree with the numpy engine's, a sprayer's captive audience included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
from pyspark.sql import SparkSession

from graphs.events.jsonl import read_events as read_numpy
from graphs.features.nodes import node_features as numpy_features
from graphs.scorers.structural import sink_signal
from graphs.signals.catalog import FAKE_SINK
from graphs.signals.params import ScoringParams
from graphs.spark.features import node_features
from graphs.spark.read import read_events
from graphs.spark.structural import col_name, sink
from tests.graphs.helpers import share


def test_a_sprayer_under_the_gate_marks_only_its_captive_audience_in_both_engines(
        spark: SparkSession, tmp_path: Path) -> None:
    # s (under the gate) sprays "pool" thrice and x0..x2 once; "both" also hears
    # from r; "sharer" hears from s alone but shares itself; f (over the gate)
    # feeds "fed" twice.
    events = [share("s", f"c{i}", i, ["pool", f"x{i}"]) for i in range(3)]
    events += [share("s", "c9", 9, ["both", "sharer"]), share("r", "c9", 10, ["both"]),
               share("sharer", "c9", 11, ["z"]), share("f", "c8", 12, ["fed"]), share("f", "c7", 13, ["fed"])]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    p = ScoringParams()
    suspicion = {"s": 0.45, "f": 0.8}

    table = read_numpy(str(path))
    ref, ids = numpy_features(table), [str(u) for u in table.users]
    infra = np.array([suspicion.get(u, 0.0) for u in ids])
    star = np.array([0.45 if u == "s" else 0.0 for u in ids])
    want = dict(zip(ids, sink_signal(ref, infra, p, star=star).score.tolist(), strict=True))
    assert want["pool"] > want["x0"] > 0 and want["fed"] > 0
    assert want["both"] == 0 and want["sharer"] == 0  # heard from another, or shares: no captive

    sf = node_features(read_events(spark, str(path)))
    infra_df = spark.createDataFrame([(u, suspicion.get(u, 0.0)) for u in ids], "id string, infra double")
    star_df = spark.createDataFrame([(u, 0.45 if u == "s" else 0.0) for u in ids], "id string, star double")
    got = {r["id"]: r[col_name(FAKE_SINK, "score")] for r in sink(sf, infra_df, p, star=star_df).collect()}
    for u in ids:
        assert abs(got[u] - want[u]) < 1e-9, u
