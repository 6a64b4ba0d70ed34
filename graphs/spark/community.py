"""Label propagation and community roles on DataFrames, the Spark side of :mod:`graphs.features.community`.

Each round joins the undirected share links with the current labels,
counts links per (node, label), keeps the heaviest label per node (ties by
:func:`~graphs.signals.node_keys.lpa_tie`) and lets
the nodes whose key has this round's bit set adopt it: the numpy engine's
rule, computed from the ids alone.  Labels are checkpointed every round.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from graphs.signals.formulas import participation
from graphs.signals.node_keys import lpa_moves, lpa_tie, seed_mix
from graphs.spark.ops import SPARK
from graphs.spark.session import checkpoint

__all__ = ["community_roles", "key_of", "label_propagation", "undirected_links"]


def key_of(column: str, seed: int) -> Column:
    """:func:`graphs.signals.node_keys.node_key` of an id column."""
    return F.crc32(F.col(column)).bitwiseXOR(F.lit(seed_mix(seed)))


def undirected_links(share: DataFrame) -> DataFrame:
    """Both directions of every share link, once each (``src``, ``dst``), self-links included."""
    both = share.select("src", "dst").union(share.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    return both.distinct()


def label_propagation(users: DataFrame, links: DataFrame, *, seed: int = 0, max_iter: int = 12,
                      tol: float = 5e-3) -> DataFrame:
    """``id``, ``label`` (the id of the node whose label it adopted) of every user."""
    labels = users.select("id", F.col("id").alias("label"), key_of("id", seed).alias("key")).transform(checkpoint)
    # the links once with the key of their source: each round then needs one join with the labels
    links = (links.where(F.col("src") != F.col("dst"))
             .join(labels.select(F.col("id").alias("src"), F.col("key").alias("skey")), "src").persist())
    n = labels.count()
    for round_no in range(max_iter):
        nb = (links.join(labels.select(F.col("id").alias("dst"), "label"), "dst")
              .groupBy("src", "skey", "label").agg(F.count(F.lit(1)).alias("w")))
        tie = lpa_tie(SPARK, F.col("skey"), key_of("label", seed), round_no)
        # heaviest label, ties by the larger tie-break (equal 32-bit tie-breaks are left to chance)
        best = (nb.where(lpa_moves(SPARK, F.col("skey"), round_no))
                .groupBy(F.col("src").alias("id")).agg(F.max_by("label", F.struct("w", tie)).alias("best")))
        changed_flag = F.col("best").isNotNull() & (F.col("best") != F.col("label"))
        new = (labels.join(best, "id", "left")
               .select("id", F.when(changed_flag, F.col("best")).otherwise(F.col("label")).alias("label"),
                       "key", changed_flag.alias("changed")).transform(checkpoint))
        changed = new.where("changed").count()
        labels = new.drop("changed")
        if changed <= tol * n:
            break
    return labels.select("id", "label")


def community_roles(labels: DataFrame, links: DataFrame) -> DataFrame:
    """Per user: ``degree``, ``intra``, ``participation``, ``n_communities`` and community ``size``."""
    own = labels.select(F.col("id").alias("src"), F.col("label").alias("own"))
    nb = (links.join(labels.select(F.col("id").alias("dst"), "label"), "dst")
          .groupBy("src", "label").agg(F.count(F.lit(1)).cast("double").alias("k_c")))
    per = (nb.join(own, "src").groupBy(F.col("src").alias("id"))
           .agg(F.sum("k_c").alias("degree"), F.sum(F.col("k_c") * F.col("k_c")).alias("sq"),
                F.sum(F.when(F.col("label") == F.col("own"), F.col("k_c")).otherwise(0.0)).alias("intra"),
                F.count(F.lit(1)).cast("double").alias("n_communities")))
    size = labels.groupBy("label").agg(F.count(F.lit(1)).cast("double").alias("size"))
    roles = (labels.join(size, "label").join(per, "id", "left")
             .fillna(0.0, ["degree", "sq", "intra", "n_communities"]))
    return roles.select("id", "degree", "intra", "n_communities", "size",
                        participation(SPARK, F.col("sq"), F.col("degree")).alias("participation"))
