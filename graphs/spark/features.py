"""Per-node counts as DataFrames, the Spark side of :mod:`graphs.features.nodes`."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.events.table import ALLOW
from graphs.spark.read import SparkEvents

__all__ = ["SparkFeatures", "node_features", "quantile_of_positive", "typical_claim_rate"]


@dataclass(frozen=True)
class SparkFeatures:
    """``users`` (``id``, ``attempts``, ``allowed``, ``refused``, ``sent``, ``claims``,
    ``out_contacts``, ``in_contacts``, ``in_deliveries``, and ``named_allowed``,
    ``named_sent``, ``named_claims`` over the shares that name their recipients);
    ``devices`` (``id``,
    ``dev_users``, ``dev_attempts``); edges ``share`` and ``share_try`` (``src``,
    ``dst``, ``w``) and ``device_user`` (``device``, ``user``, ``w``); ``claim_rate0``."""

    users: DataFrame
    devices: DataFrame
    share: DataFrame
    share_try: DataFrame
    device_user: DataFrame
    claim_rate0: float


def quantile_of_positive(df: DataFrame, column: str, q: float = 0.99, floor: float = 1.0) -> float:
    """:func:`graphs.signals.ops.high_quantile` of ``column``: exact quantile ``q`` of its
    positive values (linear interpolation, as numpy), at least ``floor``; one scalar to the driver."""
    row = df.where(F.col(column) > 0).agg(F.percentile(F.col(column).cast("double"), F.lit(q)).alias("q")).first()
    value = None if row is None else row["q"]
    return floor if value is None else max(float(value), floor)


def typical_claim_rate(users: DataFrame, sent: str = "sent", claims: str = "claims") -> float:
    """Median claim rate of sharers with 5+ recipients (else any), at least 0.01; 0.2 with none
    (:func:`graphs.features.nodes.typical_claim_rate`)."""
    for cond in (F.col(sent) >= 5, F.col(sent) > 0):
        row = users.where(cond).agg(F.percentile(F.col(claims) / F.col(sent), F.lit(0.5)).alias("m")).first()
        if row is not None and row["m"] is not None:
            return float(max(row["m"], 0.01))
    return 0.2


def node_features(ev: SparkEvents) -> SparkFeatures:
    """Counts per user and device, and the share, attempt and device edges with their weights."""
    e = ev.events
    allowed = F.col("decision") == ALLOW
    with_outcome = allowed & (F.col("claimed") >= 0)
    sent_ev = F.when(F.col("delivered") >= 0, F.col("delivered")).otherwise(F.col("n_rec"))
    per_sharer = e.groupBy(F.col("user").alias("id")).agg(
        F.count(F.lit(1)).cast("double").alias("attempts"),
        F.sum(allowed.cast("double")).alias("allowed"),
        F.sum(F.when(with_outcome, sent_ev).otherwise(0)).cast("double").alias("sent"),
        F.sum(F.when(with_outcome, F.col("claimed")).otherwise(0)).cast("double").alias("claims"),
        F.sum((allowed & F.col("named")).cast("double")).alias("named_allowed"),
        F.sum(F.when(with_outcome & F.col("named"), sent_ev).otherwise(0)).cast("double").alias("named_sent"),
        F.sum(F.when(with_outcome & F.col("named"), F.col("claimed")).otherwise(0)).cast("double")
        .alias("named_claims"))
    share = ev.edges.groupBy("src", "dst").agg(F.count(F.lit(1)).cast("double").alias("w")).persist()
    share_try = (share.unionByName(ev.attempts.withColumn("w", F.lit(1.0)))
                 .groupBy("src", "dst").agg(F.sum("w").alias("w")))
    out_deg = share.groupBy(F.col("src").alias("id")).agg(F.count(F.lit(1)).cast("double").alias("out_contacts"))
    in_deg = share.groupBy(F.col("dst").alias("id")).agg(F.count(F.lit(1)).cast("double").alias("in_contacts"),
                                                         F.sum("w").alias("in_deliveries"))
    users = (ev.users.join(per_sharer, "id", "left").join(out_deg, "id", "left").join(in_deg, "id", "left")
             .fillna(0.0).withColumn("refused", F.col("attempts") - F.col("allowed")).persist())
    device_user = (e.where(F.col("device").isNotNull()).groupBy("device", "user")
                   .agg(F.count(F.lit(1)).cast("double").alias("w")).persist())
    devices = device_user.groupBy(F.col("device").alias("id")).agg(
        F.count(F.lit(1)).cast("double").alias("dev_users"), F.sum("w").alias("dev_attempts")).persist()
    return SparkFeatures(users, devices, share, share_try, device_user, typical_claim_rate(users))
