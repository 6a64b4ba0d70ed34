"""The batch job on Spark: events -> scores.jsonl, scores.parquet and cases.jsonl, optionally into Redis.

``python -m riskservice score --engine spark --input EVENTS --output DIR``
calls :func:`spark_score`.  The tables stay distributed from the read to the
write; the driver only sees counts, quantiles, the pruned dense cores and
the flagged nodes' slice of the events that the cases are cut from
(:mod:`graphs.spark.cases`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from graphs.cases.build import CaseParams
from graphs.cases.files import write_cases
from graphs.signals.params import ScoringParams
from graphs.spark.anomaly import anomaly_scores
from graphs.spark.cases import spark_cases
from graphs.spark.features import node_features
from graphs.spark.kol import kol_scores
from graphs.spark.read import SparkEvents, read_events
from graphs.spark.rows import DEVICE_SPECS, USER_SPECS, render_rows, write_rows
from graphs.spark.session import checkpoint

__all__ = ["SparkScores", "score_events", "spark_score"]


@dataclass(frozen=True)
class SparkScores:
    """The rendered ``rows`` (both kinds), the wide ``users`` and ``devices`` tables, the events,
    and the ``cases`` once cut (None until then: :func:`spark_score` cuts them)."""

    rows: DataFrame
    users: DataFrame
    devices: DataFrame
    events: SparkEvents
    cases: list[dict[str, Any]] | None = None

    def with_cases(self, params: CaseParams | None = None) -> SparkScores:
        """These scores with their cases (cut now if not yet)."""
        if self.cases is not None:
            return self
        return replace(self, cases=spark_cases(self.events, self.users, self.devices, params))


def _labels(ev: SparkEvents, key: str) -> DataFrame:
    """The last analyst label given to each user (or device) in the events."""
    return (ev.events.where(F.col("label").isNotNull() & F.col(key).isNotNull())
            .groupBy(F.col(key).alias("id")).agg(F.max_by("label", "eid").alias("label")))


def score_events(spark: SparkSession, source: str, *, params: ScoringParams | None = None,
                 seed: int = 0) -> SparkScores:
    """Every score of the events at ``source`` as DataFrames (nothing written yet)."""
    p = params or ScoringParams()
    ev = read_events(spark, source)
    f = node_features(ev)
    anom = anomaly_scores(spark, ev, f, p)
    kol = kol_scores(ev, f, anom.users.select("id", "anomaly"), p, seed=seed)
    users = (anom.users.drop("anomaly").join(kol, "id").join(_labels(ev, "user"), "id", "left")).transform(checkpoint)
    device_kol = (f.device_user.join(users.select(F.col("id").alias("user"), "kol"), "user")
                  .groupBy(F.col("device").alias("id")).agg(F.max("kol").alias("kol")))
    devices = anom.devices.join(device_kol, "id", "left").fillna(0.0, ["kol"]).join(
        _labels(ev, "device"), "id", "left")
    rows = render_rows(users, "user", USER_SPECS).unionByName(render_rows(devices, "device", DEVICE_SPECS))
    return SparkScores(rows, users, devices, ev)


def _write_cases(spark: SparkSession, cases: list[dict[str, Any]], out: str) -> str:
    """``cases.jsonl`` in ``out`` (as the numpy engine writes it); on HDFS or S3 a one-part folder
    ``cases.jsonl.parts`` beside ``scores.jsonl.parts``."""
    if "://" not in out:  # a local folder
        return write_cases(cases, out)
    path = f"{out.rstrip('/')}/cases.jsonl.parts"
    lines = [(orjson.dumps(c).decode(),) for c in cases]
    spark.createDataFrame(lines, "line string").coalesce(1).write.mode("overwrite").text(path)
    return path


def spark_score(source: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
                master: str | None = "local[*]", shuffle_partitions: int | None = None,
                params: ScoringParams | None = None, seed: int = 0,
                checkpoint_dir: str | None = None, spark: SparkSession | None = None,
                cases: CaseParams | None = None) -> tuple[dict[str, Any], SparkScores]:
    """Score ``source`` (JSON lines or a Parquet folder) on Spark and write the rows and the cases
    into ``output_dir``.

    ``cases`` tunes how flagged nodes are grouped into cases, as in the numpy
    engine (:mod:`graphs.cases.build`); they are cut on the driver from the
    flagged nodes' slice of the events (:mod:`graphs.spark.cases`), and the
    write-back stores them with the scores.

    Returns a summary (counts, paths, seconds) and the DataFrames with the
    cases, for a write-back into Redis.
    """
    from graphs.spark.session import spark_session

    t0 = time.perf_counter()
    out = os.fspath(output_dir)
    if "://" not in out:  # a local folder (hdfs://, s3a:// and the like are Spark's to create)
        os.makedirs(out, exist_ok=True)
    session = spark or spark_session(master, shuffle_partitions=shuffle_partitions,
                                     checkpoint_dir=checkpoint_dir)
    res = score_events(session, os.fspath(source), params=params, seed=seed)
    paths = write_rows(res.rows, out)
    t_cases = time.perf_counter()
    res = res.with_cases(cases)
    assert res.cases is not None
    paths["cases_path"] = _write_cases(session, res.cases, out)
    cases_s = time.perf_counter() - t_cases
    counts = res.rows.groupBy("kind").agg(F.count(F.lit(1)).alias("n"),
                                          F.sum((F.col("anomaly") >= 0.5).cast("long")).alias("flagged")).collect()
    by_kind = {r["kind"]: (int(r["n"]), int(r["flagged"] or 0)) for r in counts}
    summary: dict[str, Any] = {
        "engine": "spark", "master": session.sparkContext.master,
        "users": by_kind.get("user", (0, 0))[0], "devices": by_kind.get("device", (0, 0))[0],
        "events": res.events.events.count(), "edges": res.events.edges.count(),
        "anomalous_users": by_kind.get("user", (0, 0))[1], "anomalous_devices": by_kind.get("device", (0, 0))[1],
        "cases": len(res.cases), **paths, "cases_seconds": round(cases_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return summary, res
