"""Structural anomaly signals on DataFrames: farms, refused attempts, low claims, sprays, sinks.

Columns are named ``<signal>__value``, ``<signal>__score`` and
``<signal>__<extra>`` after :mod:`graphs.signals.catalog`, keyed by ``id``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from graphs.scorers.structural import claim_tail_log10
from graphs.signals.catalog import DEVICE_ROTATION, FAKE_SINK, LOW_CLAIM, REFUSED, STAR_SPRAY, USER_FARM, SignalSpec
from graphs.signals.formulas import (
    claim_gap,
    claim_yardstick,
    effective_trials,
    farm_score,
    low_claim_score,
    recipients_per_share,
    refused_score,
    rotation_score,
    sink_score,
    star_score,
)
from graphs.signals.params import ScoringParams
from graphs.spark.features import SparkFeatures, typical_claim_rate
from graphs.spark.ops import SPARK

__all__ = ["col_name", "device_farm", "low_claim", "refused", "rotation", "sink", "star", "user_farm"]


def col_name(spec: SignalSpec, part: str) -> str:
    """The column of one part (``value``, ``score`` or an extra) of a signal."""
    return f"{spec.name}__{part}"


def device_farm(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Per device: accounts that shared from it and its farm score."""
    return f.devices.select("id", F.col("dev_users").alias("device_farm__value"),
                            farm_score(SPARK, F.col("dev_users"), p).alias("device_farm__score"))


def user_farm(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Per user: the most crowded device it used."""
    worst = (f.device_user.join(f.devices.select(F.col("id").alias("device"), "dev_users"), "device")
             .groupBy(F.col("user").alias("id")).agg(F.max("dev_users").alias("v")))
    return worst.select("id", F.col("v").alias(col_name(USER_FARM, "value")),
                        farm_score(SPARK, F.col("v"), p).alias(col_name(USER_FARM, "score")))


def rotation(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Per user: devices it used and the distinct other accounts on them (a pool of phones taking turns)."""
    du = f.device_user.select("device", "user")
    devices = du.groupBy(F.col("user").alias("id")).agg(F.count(F.lit(1)).cast("double").alias("devices"))
    a, b = du.alias("a"), du.alias("b")
    co = (a.join(b, (F.col("a.device") == F.col("b.device")) & (F.col("a.user") != F.col("b.user")))
          .select(F.col("a.user").alias("id"), F.col("b.user").alias("v")).distinct()
          .groupBy("id").agg(F.count(F.lit(1)).cast("double").alias("co_users")))
    u = devices.join(co, "id", "left").fillna(0.0, ["co_users"])
    return u.select("id", F.col("devices").alias(col_name(DEVICE_ROTATION, "value")),
                    rotation_score(SPARK, F.col("devices"), F.col("co_users"), p)
                    .alias(col_name(DEVICE_ROTATION, "score")),
                    F.col("co_users").alias(col_name(DEVICE_ROTATION, "co_users")))


def refused(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    u = f.users
    return u.select("id", F.col("refused").alias(col_name(REFUSED, "value")),
                    refused_score(SPARK, F.col("refused"), F.col("attempts"), p).alias(col_name(REFUSED, "score")),
                    F.col("attempts").alias(col_name(REFUSED, "attempts")))


def _tails(p0: tuple[float, float]):  # type: ignore[no-untyped-def]
    """Arrow batches: the binomial tail of the named shares (``c0``, ``n0``) and of the broadcasts (``c1``, ``n1``)."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            cols = [b.column(c).to_numpy(zero_copy_only=False) for c in ("c0", "n0", "c1", "n1")]
            yield pa.RecordBatch.from_arrays(
                [b.column("id"), pa.array(claim_tail_log10(cols[0], cols[1], p0[0])),
                 pa.array(claim_tail_log10(cols[2], cols[3], p0[1]))], names=["id", "t0", "t1"])
    return run


def low_claim(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Claim shortfall and its binomial tail (scipy on Arrow batches, as the numpy engine computes it).

    Named shares and broadcasts are judged apart, each against its own
    typical rate and recipients per share
    (:func:`graphs.signals.formulas.claim_yardstick`), from the same sums as
    the numpy engine; a node keeps the stronger.
    """
    u = f.users.select("id", *(F.col(c) for c in ("named_claims", "named_sent", "named_allowed")),
                       (F.col("claims") - F.col("named_claims")).alias("b_claims"),
                       (F.col("sent") - F.col("named_sent")).alias("b_sent"),
                       (F.col("allowed") - F.col("named_allowed")).alias("b_allowed"))
    kinds = (("named_claims", "named_sent", "named_allowed"), ("b_claims", "b_sent", "b_allowed"))
    tot = u.agg(*(F.sum(c).alias(c) for k in kinds for c in k[1:]),
                *(F.sum((F.col(k[1]) >= 5).cast("long")).alias(f"{k[1]}_5") for k in kinds)).first()

    def total(c: str) -> float:
        return float((tot and tot[c]) or 0.0)

    graph = (f.claim_rate0, recipients_per_share(total("named_sent") + total("b_sent"),
                                                 total("named_allowed") + total("b_allowed")))
    yard = [claim_yardstick(int(total(f"{k[1]}_5")), (typical_claim_rate(u, k[1], k[0]),
                                                      recipients_per_share(total(k[1]), total(k[2]))), graph, p)
            for k in kinds]
    eff = [effective_trials(SPARK, F.col(k[0]), F.col(k[1]), F.col(k[2]), y[1])
           for k, y in zip(kinds, yard, strict=True)]
    tails = (u.select("id", eff[0][0].alias("c0"), eff[0][1].alias("n0"), eff[1][0].alias("c1"), eff[1][1].alias("n1"))
             .mapInArrow(_tails((yard[0][0], yard[1][0])), "id string, t0 double, t1 double"))
    score = [low_claim_score(SPARK, claim_gap(SPARK, F.col(k[0]), F.col(k[1]), y[0], p)[1], F.col(t), p)
             for k, y, t in zip(kinds, yard, ("t0", "t1"), strict=True)]
    use = score[0] >= score[1]
    claims = F.when(use, F.col("named_claims")).otherwise(F.col("b_claims"))
    sent = F.when(use, F.col("named_sent")).otherwise(F.col("b_sent"))
    return u.join(tails, "id").select(
        "id", (claims / F.greatest(sent, F.lit(1.0))).alias(col_name(LOW_CLAIM, "value")),
        F.greatest(score[0], score[1]).alias(col_name(LOW_CLAIM, "score")),
        claims.alias(col_name(LOW_CLAIM, "claims")), sent.alias(col_name(LOW_CLAIM, "sent")),
        F.when(use, F.lit(yard[0][0])).otherwise(F.lit(yard[1][0])).alias(col_name(LOW_CLAIM, "p0")))


def star(f: SparkFeatures, p: ScoringParams) -> DataFrame:
    """Sprays: many recipients who never claim, or who hear only from this sharer."""
    dst = f.users.select(F.col("id").alias("dst"), F.col("in_contacts").alias("d_in"), F.col("allowed").alias("d_al"))
    is_owned = ((F.col("d_in") == 1) & (F.col("d_al") == 0) & (F.col("w") >= 2)).cast("double")
    owned = (f.share.join(dst, "dst")
             .groupBy(F.col("src").alias("id"))
             .agg(F.sum(is_owned).alias("owned"), F.sum(is_owned * F.col("w")).alias("owned_w"),
                  F.sum("w").alias("total_w")))
    u = f.users.join(owned, "id", "left").fillna(0.0, ["owned", "owned_w", "total_w"])
    share = SPARK.safe_div(F.col("owned_w"), F.col("total_w"))
    _, gap = claim_gap(SPARK, F.col("claims"), F.col("sent"), f.claim_rate0, p)
    return u.select("id", F.col("out_contacts").alias(col_name(STAR_SPRAY, "value")),
                    star_score(SPARK, F.col("out_contacts"), gap, F.col("owned"), share, p)
                    .alias(col_name(STAR_SPRAY, "score")),
                    gap.alias(col_name(STAR_SPRAY, "gap")), F.col("owned").alias(col_name(STAR_SPRAY, "owned")),
                    share.alias(col_name(STAR_SPRAY, "owned_share")))


def sink(f: SparkFeatures, infra: DataFrame, p: ScoringParams, star: DataFrame | None = None) -> DataFrame:
    """Accounts that mostly receive, again and again, from sharers suspicious of infrastructure fraud.

    ``infra`` has ``id`` and ``infra`` (the noisy-OR of farm, refused, star and dense scores).
    ``star`` (``id``, ``star``: the ``star_spray`` score) lets a sharer under
    the ``sink_suspect`` gate count for its captive audience, recipients that
    hear from it alone and never share, by its spray score
    (``graphs.scorers.structural.sink_signal``).
    """
    src = infra.select(F.col("id").alias("src"), F.col("infra").alias("s_inf"))
    edges = f.share_try.join(src, "src", "left").fillna(0.0, ["s_inf"])
    flagged = F.col("s_inf") >= p.sink_suspect
    weight: Column = flagged.cast("double") * F.col("s_inf")
    counts: Column = flagged.cast("double")
    if star is not None:
        senders = f.share_try.groupBy("dst").agg(F.count(F.lit(1)).alias("senders"))
        quiet = f.users.select(F.col("id").alias("dst"), F.col("allowed").alias("d_allowed"))
        edges = (edges.join(star.select(F.col("id").alias("src"), F.col("star").alias("s_star")), "src", "left")
                 .join(senders, "dst").join(quiet, "dst", "left").fillna(0.0, ["s_star", "d_allowed"]))
        captive = (F.col("senders") == 1) & (F.col("d_allowed") == 0) & ~flagged & (F.col("s_star") > 0)
        weight = F.when(captive, F.col("s_star")).otherwise(weight)
        counts = F.when(captive, F.lit(1.0)).otherwise(counts)
    wf = F.col("w") * counts
    per_dst = (edges.groupBy(F.col("dst").alias("id"))
               .agg(F.sum(F.col("w") * weight).alias("sus_in"), F.sum(wf).alias("sus_cnt"),
                    F.max(wf).alias("repeat"), F.sum("w").alias("total_in")))
    u = (f.users.select("id", "allowed").join(per_dst, "id", "left").join(infra, "id", "left")
         .fillna(0.0, ["sus_in", "sus_cnt", "repeat", "total_in", "infra"]))
    score, frac = sink_score(SPARK, F.col("sus_in"), F.col("total_in"), F.col("sus_cnt"), F.col("repeat"),
                             F.col("allowed"), F.col("infra"), p)
    return u.select("id", F.col("sus_cnt").alias(col_name(FAKE_SINK, "value")),
                    score.alias(col_name(FAKE_SINK, "score")), frac.alias(col_name(FAKE_SINK, "frac")),
                    F.col("repeat").alias(col_name(FAKE_SINK, "repeat")))
