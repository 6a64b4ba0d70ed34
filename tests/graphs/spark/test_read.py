"""The Spark reader sees what the numpy reader sees, from JSON lines and from Parquet."""

from __future__ import annotations

from pathlib import Path

import orjson
from pyspark.sql import SparkSession

from graphs.events.jsonl import read_events as read_numpy
from graphs.spark.read import read_events
from tests.graphs.helpers import share


def test_json_lines_and_parquet_give_the_numpy_counts(spark: SparkSession, tmp_path: Path) -> None:
    events = [share("a", "c1", 0, ["b", "c"], device="d1", claimed=1),
              share("b", "c1", 10, ["c", "e"], device="d1", decision="challenge"),
              share("a", "c2", 20, None, count=7), share("e", "c2", 30, [], count=2)]
    events[0]["delivered"] = 2
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    ref = read_numpy(str(path))
    parquet = tmp_path / "events.parquet"
    spark.read.json(str(path)).write.parquet(str(parquet))
    for source in (str(path), str(parquet)):
        ev = read_events(spark, source)
        assert ev.events.count() == ref.n_events
        assert sorted((r["src"], r["dst"]) for r in ev.edges.collect()) == sorted(
            (ref.users[s], ref.users[d]) for s, d in zip(ref.edge_src, ref.edge_dst, strict=True))
        assert sorted(r["id"] for r in ev.users.collect()) == sorted(ref.users.tolist())
        n_rec = {r["eid"]: r["n_rec"] for r in ev.events.collect()}
        assert sorted(n_rec.values()) == sorted(ref.n_recipients.tolist())
