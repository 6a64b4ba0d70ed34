"""Coupon cascades and realised secondary propagation on DataFrames.

As in :mod:`graphs.features.cascade`: a cascade node is a (coupon, sharer)
pair; its parent is the sharer of the earliest delivery of that coupon to
the user, when that delivery came before the user's first share of it.
Descendant sums climb the forest one level per round: every round moves the
contributions still under way to their parents' parents, and checkpoints.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.events.table import ALLOW
from graphs.spark.read import SparkEvents
from graphs.spark.session import checkpoint

__all__ = ["propagation_by_user"]


def _pairs(ev: SparkEvents) -> DataFrame:
    allowed = ev.events.where(F.col("decision") == ALLOW)
    return allowed.groupBy("coupon", "user").agg(
        F.min("ts").alias("first_ts"), F.count(F.lit(1)).cast("double").alias("shares"),
        F.sum(F.greatest(F.col("claimed"), F.lit(0))).cast("double").alias("claims"))


def _parents(ev: SparkEvents, pairs: DataFrame) -> DataFrame:
    """``coupon``, ``user``, ``parent`` (a user) for every pair that has one."""
    first = ev.edges.groupBy("coupon", F.col("dst").alias("user")).agg(
        F.min(F.struct("ts", "eid", "src")).alias("f"))
    return (pairs.join(first, ["coupon", "user"])
            .where(F.col("f.ts") < F.col("first_ts"))
            .select("coupon", "user", F.col("f.src").alias("parent")))


def propagation_by_user(ev: SparkEvents, max_depth: int = 10_000) -> DataFrame:
    """Per user: ``desc_shares``, ``desc_claims`` and ``secondary`` summed over coupons."""
    pairs = _pairs(ev).persist()
    parent = _parents(ev, pairs).persist()
    # contributions of every pair, starting at its parent
    moving = (pairs.join(parent, ["coupon", "user"])
              .select("coupon", F.col("parent").alias("at"), "shares", "claims")
              .groupBy("coupon", "at").agg(F.sum("shares").alias("s"), F.sum("claims").alias("c"))
              .transform(checkpoint))
    arrived = [moving]
    up = parent.select("coupon", F.col("user").alias("at"), F.col("parent").alias("next"))
    for _ in range(max_depth):
        moving = (moving.join(up, ["coupon", "at"]).select("coupon", F.col("next").alias("at"), "s", "c")
                  .groupBy("coupon", "at").agg(F.sum("s").alias("s"), F.sum("c").alias("c")).transform(checkpoint))
        if moving.isEmpty():
            break
        arrived.append(moving)
    total = arrived[0]
    for part in arrived[1:]:
        total = total.unionByName(part)
    return (total.groupBy(F.col("at").alias("id"))
            .agg(F.sum("s").alias("desc_shares"), F.sum("c").alias("desc_claims"))
            .withColumn("secondary", F.col("desc_shares") + F.col("desc_claims")))
