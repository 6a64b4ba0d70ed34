"""Hoarders and their feeders on DataFrames, the Spark side of :mod:`graphs.scorers.receivers`.

The binomial tails run through scipy on Arrow batches, with the very
function the numpy engine calls, and each round of suspicion flowing
hoarder -> feeder -> hoarder is two joins over the distinct share edges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from graphs.events.table import ALLOW
from graphs.scorers.receivers import DAY, binomial_surprise
from graphs.signals.catalog import FEEDER, HOARDER
from graphs.signals.formulas import feeder_score, fresh_score, hoarder_score, inflow_score, noisy_or
from graphs.signals.params import ScoringParams
from graphs.spark.features import SparkFeatures
from graphs.spark.ops import SPARK
from graphs.spark.read import SparkEvents
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["pair_claims", "receivers"]


def _surprise(k: str, n: str, p0: float, out: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            kk = b.column(k).to_numpy(zero_copy_only=False)
            nn = b.column(n).to_numpy(zero_copy_only=False)
            yield pa.RecordBatch.from_arrays([b.column("id"), pa.array(binomial_surprise(kk, nn, p0))],
                                             names=["id", out])
    return run


def _worst_recipient(share: DataFrame, hoard: DataFrame) -> DataFrame:
    """Per sharer (``id``), the largest ``hoard`` among its recipients (``worst``)."""
    return (share.join(hoard.select(F.col("id").alias("dst"), "hoard"), "dst")
            .groupBy(F.col("src").alias("id")).agg(F.max("hoard").alias("worst")))


def _claim_credit() -> tuple[Column, Column]:
    """Over the events' columns: whether a share reported an outcome, and the
    claims credited to each of its recipients (claimed / delivered, at most 1)."""
    ok = (F.col("claimed") >= 0) & (F.col("decision") == ALLOW)
    denom = F.greatest(F.when(F.col("delivered") > 0, F.col("delivered")).otherwise(F.col("n_rec")), F.lit(1))
    return ok, F.when(ok, F.least(F.col("claimed") / denom, F.lit(1.0))).otherwise(F.lit(0.0))


def pair_claims(ev: SparkEvents) -> DataFrame:
    """``src``, ``dst``, ``c``: the mean claim credit of the pair's deliveries, as
    :func:`graphs.scorers.receivers.pair_claims` (pairs without claims left out)."""
    _, per = _claim_credit()
    e = ev.events.select("eid", "decision", "claimed", "delivered", "n_rec")
    return (ev.edges.select("eid", "src", "dst").join(e, "eid").groupBy("src", "dst")
            .agg(F.avg(per).alias("c")).where(F.col("c") > 0))


def receivers(ev: SparkEvents, f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Per user: ``hoarder__*`` and ``feeder__*`` columns, as :func:`graphs.scorers.receivers.receiver_signals`."""
    span = ev.events.groupBy(F.col("user").alias("id")).agg(((F.max("ts") - F.min("ts")) / DAY).alias("span"))
    u = f.users.select("id", "attempts", "allowed", "in_contacts").join(span, "id", "left").fillna(0.0, ["span"])
    u = u.withColumn("fresh", fresh_score(SPARK, F.col("attempts"), F.col("in_contacts"), F.col("span"), p))
    share = f.share.select("src", "dst")
    fresh_in = (share.join(u.select(F.col("id").alias("src"), "fresh"), "src")
                .groupBy(F.col("dst").alias("id")).agg(F.sum("fresh").alias("fresh_in")))
    u = u.join(fresh_in, "id", "left").fillna(0.0, ["fresh_in"])
    tot = u.agg(F.sum("fresh_in").alias("f"), F.sum("in_contacts").alias("n")).first()
    p_fresh = min(max(float(tot["f"] or 0.0) / max(float(tot["n"] or 0.0), 1.0), 1e-3), 0.5) if tot else 1e-3
    # each delivery's claims split evenly over its recipients
    e = ev.events.select("eid", "decision", "claimed", "delivered", "n_rec")
    ok, per = _claim_credit()
    got = (ev.edges.select("eid", "dst").join(e, "eid")
           .groupBy(F.col("dst").alias("id"))
           .agg(F.sum(ok.cast("double")).alias("got"), F.sum(per).alias("claims")))
    u = u.join(got, "id", "left").fillna(0.0, ["got", "claims"]).transform(checkpoint)
    fs = u.select("id", "fresh_in", "in_contacts").mapInArrow(
        _surprise("fresh_in", "in_contacts", p_fresh, "fresh_sur"), "id string, fresh_sur double")
    cs = u.select("id", "claims", "got").mapInArrow(
        _surprise("claims", "got", f.claim_rate0, "claim_sur"), "id string, claim_sur double")
    u = u.join(fs, "id").join(cs, "id")
    u = u.withColumn("hoard0", hoarder_score(SPARK, F.col("fresh_sur"), F.col("claim_sur"), F.col("allowed"), p))
    u = u.withColumns({"hoard": F.col("hoard0"), "feed": F.lit(0.0)}).transform(checkpoint)
    for _ in range(p.receiver_rounds):
        worst = _worst_recipient(share, u.select("id", "hoard"))
        u = (u.drop("feed").join(worst, "id", "left").fillna(0.0, ["worst"])
             .withColumn("feed", feeder_score(SPARK, F.col("fresh"), F.col("worst"))).drop("worst"))
        sus = (share.join(u.select(F.col("id").alias("src"), "feed"), "src")
               .groupBy(F.col("dst").alias("id")).agg(F.sum("feed").alias("sus_in")))
        u = u.join(sus, "id", "left").fillna(0.0, ["sus_in"])
        inflow = inflow_score(SPARK, F.col("sus_in"), F.col("in_contacts"), F.col("allowed"), p)
        u = u.withColumn("hoard", noisy_or(SPARK, F.col("hoard0"), inflow)).drop("sus_in").transform(checkpoint)
    worst = _worst_recipient(share, u.select("id", "hoard"))
    u = u.join(worst, "id", "left").fillna(0.0, ["worst"])
    return u.select(
        "id", F.col("fresh_in").alias(col_name(HOARDER, "value")), F.col("hoard").alias(col_name(HOARDER, "score")),
        F.col("in_contacts").alias(col_name(HOARDER, "n_in")), F.col("claims").alias(col_name(HOARDER, "claims")),
        F.col("got").alias(col_name(HOARDER, "got")),
        F.col("worst").alias(col_name(FEEDER, "value")), F.col("feed").alias(col_name(FEEDER, "score")),
        F.col("fresh").alias(col_name(FEEDER, "fresh")))
