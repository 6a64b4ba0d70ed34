"""KOL of every user on DataFrames, combined as in :mod:`graphs.scorers.kol`."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.signals.catalog import ACTIVE_SHARER, BRIDGE, COMMUNITY_HUB, SECONDARY_PROPAGATION
from graphs.signals.formulas import kol_combine, kol_discount, log_scale
from graphs.signals.params import ScoringParams
from graphs.spark.cascade import propagation_by_user
from graphs.spark.community import community_roles, label_propagation, undirected_links
from graphs.spark.features import SparkFeatures, quantile_of_positive
from graphs.spark.ops import SPARK
from graphs.spark.read import SparkEvents
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["kol_scores"]


def kol_scores(ev: SparkEvents, f: SparkFeatures, anomaly: DataFrame, p: ScoringParams, *,
               seed: int = 0) -> DataFrame:
    """``id``, ``kol``, ``kol_raw`` and the four KOL signals' columns of every user.

    ``anomaly`` has ``id`` and ``anomaly``; it discounts the score.
    """
    links = undirected_links(f.share).persist()
    labels = label_propagation(f.users.select("id"), links, seed=seed, max_iter=p.lpa_iter)
    roles = community_roles(labels, links)
    prop = propagation_by_user(ev)
    u = (f.users.select("id", "allowed").join(roles, "id", "left").join(prop, "id", "left")
         .join(anomaly, "id", "left").fillna(0.0).transform(checkpoint))
    q_intra = quantile_of_positive(u, "intra")
    q_deg = quantile_of_positive(u, "degree")
    q_allowed = quantile_of_positive(u, "allowed")
    q_sec = quantile_of_positive(u, "secondary", 0.995)
    spread = log_scale(SPARK, F.col("secondary"), q_sec)
    hub = log_scale(SPARK, F.col("intra"), q_intra)
    bridge = F.col("participation") * log_scale(SPARK, F.col("degree"), q_deg)
    active = log_scale(SPARK, F.col("allowed"), q_allowed)
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
        F.col("allowed").alias(col_name(ACTIVE_SHARER, "value")), active.alias(col_name(ACTIVE_SHARER, "score")))
    spread_s, hub_s, bridge_s, active_s = (F.col(col_name(s, "score")) for s in (
        SECONDARY_PROPAGATION, COMMUNITY_HUB, BRIDGE, ACTIVE_SHARER))
    raw = kol_combine(SPARK, spread_s, hub_s, bridge_s, active_s, p)
    return u.withColumn("kol_raw", raw).withColumn("kol", kol_discount(SPARK, F.col("kol_raw"), F.col("anomaly")))
