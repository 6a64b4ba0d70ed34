"""KOL of every user on DataFrames, combined as in :mod:`graphs.scorers.kol`."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.signals.catalog import ACTIVE_SHARER, BRIDGE, COMMUNITY_HUB, INFLUENCE, SECONDARY_PROPAGATION
from graphs.signals.formulas import influence_score, kol_combine, kol_discount, log_scale
from graphs.signals.params import ScoringParams
from graphs.spark.cascade import propagation_by_user
from graphs.spark.community import community_roles, label_propagation, undirected_links
from graphs.spark.features import SparkFeatures, quantile_of_positive
from graphs.spark.ops import SPARK
from graphs.spark.pagerank import pagerank
from graphs.spark.read import SparkEvents
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["kol_scores"]


def kol_scores(ev: SparkEvents, f: SparkFeatures, anomaly: DataFrame, p: ScoringParams, *,
               seed: int = 0) -> DataFrame:
    """``id``, ``kol``, ``kol_raw`` and the five KOL signals' columns of every user.

    ``anomaly`` has ``id`` and ``anomaly``; it discounts the score.
    """
    links = undirected_links(f.share).persist()
    labels = label_propagation(f.users.select("id"), links, seed=seed, max_iter=p.lpa_iter)
    roles = community_roles(labels, links)
    prop = propagation_by_user(ev)
    # influence: PageRank with every share link reversed (recipient -> sharer, weighted by deliveries)
    reversed_share = f.share.select(F.col("dst").alias("src"), F.col("src").alias("dst"), "w")
    ranks = pagerank(f.users.select("id"), reversed_share, damping=p.pagerank_damping, max_iter=p.pagerank_iter,
                     tol=p.pagerank_tol)
    n = f.users.count()
    u = (f.users.select("id", "allowed").join(roles, "id", "left").join(prop, "id", "left")
         .join(ranks.select("id", (F.col("rank") * n).alias("relative")), "id", "left")
         .join(anomaly, "id", "left").fillna(0.0).withColumn("excess", F.col("relative") - 1.0)
         .transform(checkpoint))
    q_intra = quantile_of_positive(u, "intra")
    q_deg = quantile_of_positive(u, "degree")
    q_allowed = quantile_of_positive(u, "allowed")
    q_sec = quantile_of_positive(u, "secondary", 0.995)
    q_inf = quantile_of_positive(u, "excess")
    spread = log_scale(SPARK, F.col("secondary"), q_sec)
    hub = log_scale(SPARK, F.col("intra"), q_intra)
    bridge = F.col("participation") * log_scale(SPARK, F.col("degree"), q_deg)
    active = log_scale(SPARK, F.col("allowed"), q_allowed)
    influence = influence_score(SPARK, F.col("relative"), q_inf)
    u = u.select(
        "id", "anomaly",
        F.col("secondary").alias(col_name(SECONDARY_PROPAGATION, "value")),
        spread.alias(col_name(SECONDARY_PROPAGATION, "score")),
        F.col("desc_shares").alias(col_name(SECONDARY_PROPAGATION, "shares")),
        F.col("desc_claims").alias(col_name(SECONDARY_PROPAGATION, "claims")),
        F.col("intra").alias(col_name(COMMUNITY_HUB, "value")), hub.alias(col_name(COMMUNITY_HUB, "score")),
        F.col("size").alias(col_name(COMMUNITY_HUB, "size")),
        F.col("n_communities").alias(col_name(BRIDGE, "value")), bridge.alias(col_name(BRIDGE, "score")),
        F.col("participation").alias(col_name(BRIDGE, "part")),
        F.col("allowed").alias(col_name(ACTIVE_SHARER, "value")), active.alias(col_name(ACTIVE_SHARER, "score")),
        F.col("relative").alias(col_name(INFLUENCE, "value")), influence.alias(col_name(INFLUENCE, "score")))
    spread_s, hub_s, bridge_s, active_s, influence_s = (F.col(col_name(s, "score")) for s in (
        SECONDARY_PROPAGATION, COMMUNITY_HUB, BRIDGE, ACTIVE_SHARER, INFLUENCE))
    raw = kol_combine(SPARK, spread_s, hub_s, bridge_s, active_s, influence_s, p)
    return u.withColumn("kol_raw", raw).withColumn("kol", kol_discount(SPARK, F.col("kol_raw"), F.col("anomaly")))
