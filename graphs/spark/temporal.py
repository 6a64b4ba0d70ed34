"""Timing signals on DataFrames: lockstep groups and bursts that do not decay.

Window functions over each coupon's events in time order replace the numpy
engine's sorted arrays and ``searchsorted``; pairs of accounts are formed
only inside minute-level (and ten-minute-level) clusters, capped in size,
never over a hub's links.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from graphs.signals.catalog import LOCKSTEP, NON_DECAYING_BURST
from graphs.signals.formulas import (
    HOUR,
    burst_score,
    crowd_weight,
    lockstep_association_score,
    lockstep_candidate,
    lockstep_score,
)
from graphs.signals.params import ScoringParams
from graphs.spark.ops import SPARK
from graphs.spark.structural import col_name

__all__ = ["burst", "lockstep"]


def lockstep(events: DataFrame, edges: DataFrame, p: ScoringParams) -> DataFrame:
    """Accounts that repeatedly share the same coupons at the same time as the same partners.

    Both time scales of :func:`graphs.scorers.temporal.lockstep_signal`; each
    account keeps the scale with the higher score (then the higher value,
    then the one-minute scale), as the numpy engine does, and then takes
    part of the suspicion of the best burst it joined.
    """
    scales = ((p.lockstep_window_s, HOUR), (p.lockstep_slow_window_s, p.lockstep_slow_context_s))
    runs = [_lockstep_scale(events, p, w, ctx) for w, ctx in scales]
    received = edges.select(F.col("dst").alias("u"), "coupon").distinct()
    both = runs[0][0].withColumn("scale", F.lit(0)).unionByName(runs[1][0].withColumn("scale", F.lit(-1)))
    best = (both.groupBy("id").agg(F.max(F.struct("score", "value", "scale", "partners")).alias("b"))
            .select("id", F.col("b.score").alias("direct"), F.col("b.value").alias("value"),
                    F.col("b.partners").alias("partners")))
    # one burst shared with accounts in lockstep: the same meeting at both scales counts once
    met = (runs[0][1].unionByName(runs[1][1]).groupBy("u", "v", "coupon").agg(F.max("weight").alias("weight"))
           .join(best.select(F.col("id").alias("v"), F.col("direct").alias("s_v")), "v", "left")
           .fillna(0.0, ["s_v"]))
    # an account that received the coupon is passing it on, not joining a burst
    bursts = (met.join(received, ["u", "coupon"], "left_anti").groupBy("u", "coupon")
              .agg(F.sum("s_v").alias("s_sum"), F.count(F.lit(1)).cast("double").alias("c"),
                   F.max("weight").alias("w")))
    bursts = bursts.withColumn("ev", lockstep_association_score(SPARK, F.col("s_sum"), F.col("c"), F.col("w"), p))
    assoc = bursts.groupBy(F.col("u").alias("id")).agg(F.max(F.struct("ev", "s_sum")).alias("a"))
    out = best.join(assoc, "id", "full").fillna(0.0, ["direct", "value", "partners"])
    score = F.greatest(F.col("direct"), F.lit(p.lockstep_association) * F.coalesce(F.col("a.ev"), F.lit(0.0)))
    return out.select("id", F.col("value").alias(col_name(LOCKSTEP, "value")), score.alias(col_name(LOCKSTEP, "score")),
                      F.col("partners").alias(col_name(LOCKSTEP, "partners")),
                      F.coalesce(F.col("a.s_sum"), F.lit(0.0)).alias(col_name(LOCKSTEP, "joined")))


def _lockstep_scale(events: DataFrame, p: ScoringParams, w: float, ctx: float) -> tuple[DataFrame, DataFrame]:
    """At one scale: per account ``id``, ``value`` (weighted coupons with the best partner),
    ``partners``, ``score``; and the meetings ``u``, ``v``, ``coupon``, ``weight``."""
    # range frames need integers: milliseconds are exact for the export's timestamps
    by_ms = Window.partitionBy("coupon").orderBy("ms")
    e = events.select("user", "coupon", "ts", F.round(F.col("ts") * 1000).cast("long").alias("ms"))
    e = e.withColumns({
        "near": F.count(F.lit(1)).over(by_ms.rangeBetween(-round(w * 1000), round(w * 1000))).cast("double"),
        "wide": F.count(F.lit(1)).over(by_ms.rangeBetween(-round(ctx * 1000), round(ctx * 1000))).cast("double"),
    })
    by_time = Window.partitionBy("coupon").orderBy("ts")
    cand = e.where(lockstep_candidate(SPARK, F.col("near"), F.col("wide"), p, w, ctx))
    gap = F.col("ts") - F.lag("ts").over(by_time)
    cand = cand.withColumn("start", F.when(gap.isNull() | (gap > w), 1).otherwise(0))
    cand = cand.withColumn("cluster", F.sum("start").over(by_time.rowsBetween(Window.unboundedPreceding, 0)))
    # one member per (cluster, user): repeated shares by one account are velocity, not lockstep
    members = cand.select("coupon", "cluster", "user").distinct()
    # a crowd counts for less than a group: weight by the cluster's accounts before any cut
    size = F.count(F.lit(1)).over(Window.partitionBy("coupon", "cluster")).cast("double")
    members = members.withColumn("weight", crowd_weight(SPARK, size, p))
    # a huge simultaneous crowd is cut to a fixed-size, pseudo-random part (by a hash of the id)
    rank = F.row_number().over(Window.partitionBy("coupon", "cluster").orderBy(F.crc32("user"), "user"))
    members = members.withColumn("r", rank).where(F.col("r") <= p.lockstep_max_cluster).drop("r")
    a, b = members.alias("a"), members.alias("b")
    pairs = (a.join(b, (F.col("a.coupon") == F.col("b.coupon")) & (F.col("a.cluster") == F.col("b.cluster"))
                    & (F.col("a.user") != F.col("b.user")))
             .select(F.col("a.user").alias("u"), F.col("b.user").alias("v"), F.col("a.coupon").alias("coupon"),
                     F.col("a.weight").alias("weight")))
    per_coupon = pairs.groupBy("u", "v", "coupon").agg(F.max("weight").alias("weight")).persist()
    per_pair = per_coupon.groupBy("u", "v").agg(F.sum("weight").alias("n"))
    per_user = per_pair.groupBy(F.col("u").alias("id")).agg(
        F.max("n").alias("value"), F.sum((F.col("n") >= 2 - 1e-9).cast("double")).alias("partners"))
    return per_user.withColumn("score", lockstep_score(SPARK, F.col("value"), F.col("partners"), p)), per_coupon


def burst(events: DataFrame, p: ScoringParams) -> DataFrame:
    """An account pushing one coupon at a flat, non-decaying rate for hours (its worst coupon)."""
    pair = Window.partitionBy("user", "coupon")
    e = events.select("user", "coupon", "ts").withColumns({
        "t0": F.min("ts").over(pair), "t1": F.max("ts").over(pair)})
    mid = F.col("t0") + (F.col("t1") - F.col("t0")) / 2
    g = e.groupBy("user", "coupon").agg(
        F.count(F.lit(1)).cast("double").alias("cnt"), F.first("t0").alias("t0"), F.first("t1").alias("t1"),
        F.sum((F.col("ts") > mid).cast("double")).alias("late"),
        F.sum((F.col("ts") > F.col("t0") + p.burst_organic_window_s).cast("double")).alias("after6"))
    g = g.withColumns({"span": F.col("t1") - F.col("t0"),
                       "ratio": F.col("late") / F.greatest(F.col("cnt") - F.col("late"), F.lit(1.0)),
                       "late6": F.col("after6") / F.col("cnt")})
    g = g.withColumn("score", burst_score(SPARK, F.col("ratio"), F.col("late6"), F.col("cnt"), F.col("span"), p))
    best = g.groupBy(F.col("user").alias("id")).agg(
        F.max_by(F.struct("ratio", "cnt", "span", "late6"), F.col("score")).alias("b"), F.max("score").alias("s"))
    return best.select("id", F.col("b.ratio").alias(col_name(NON_DECAYING_BURST, "value")),
                       F.col("s").alias(col_name(NON_DECAYING_BURST, "score")),
                       F.col("b.cnt").alias(col_name(NON_DECAYING_BURST, "n")),
                       (F.col("b.span") / HOUR).alias(col_name(NON_DECAYING_BURST, "h")),
                       F.col("b.late6").alias(col_name(NON_DECAYING_BURST, "late6")))
