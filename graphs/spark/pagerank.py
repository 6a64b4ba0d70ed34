"""PageRank on DataFrames, the Spark side of :mod:`graphs.features.pagerank`.

Each round joins the normalised links (``p = w / out-weight of src``) with
the current ranks, sums what reaches every node and applies the shared step
:func:`graphs.signals.formulas.pagerank_step`.  The rank held by dangling
nodes and the round's L1 change come back to the driver as two scalars (one
aggregation per round); the ranks stay on the executors, cached between
rounds and checkpointed every few rounds so the plan does not grow.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.signals.formulas import pagerank_step
from graphs.spark.ops import SPARK
from graphs.spark.session import checkpoint

__all__ = ["pagerank"]


def pagerank(nodes: DataFrame, links: DataFrame, *, damping: float = 0.85, max_iter: int = 20,
             tol: float = 1e-6, checkpoint_every: int = 5) -> DataFrame:
    """``id``, ``rank`` of every node of ``nodes`` (``id``) for the weighted links ``src -> dst`` (``w``).

    Same conventions as the numpy engine (and networkx): weights split a
    node's rank, dangling nodes' rank is spread uniformly, uniform teleport,
    start from the uniform vector, stop once the L1 change is below ``n * tol``.
    Links must join nodes of ``nodes``.
    """
    n = nodes.count()
    if n == 0:
        return nodes.select("id", F.lit(0.0).alias("rank"))
    out_w = links.groupBy("src").agg(F.sum("w").alias("out_w"))
    walk = (links.join(out_w, "src").select("src", "dst", (F.col("w") / F.col("out_w")).alias("p"))
            .where(F.col("p") > 0).persist())
    has_out = out_w.where(F.col("out_w") > 0).select(F.col("src").alias("id"), F.lit(False).alias("out"))
    ranks = (nodes.select("id").join(has_out, "id", "left")
             .select("id", F.col("out").isNull().alias("dangling"), F.lit(1.0 / n).alias("rank"))
             .transform(checkpoint))
    dangling = _dangling_mass(ranks)
    cached: DataFrame | None = None
    for round_no in range(1, max_iter + 1):
        inflow = (walk.join(ranks.select(F.col("id").alias("src"), "rank"), "src")
                  .groupBy(F.col("dst").alias("id")).agg(F.sum(F.col("rank") * F.col("p")).alias("inflow")))
        step = pagerank_step(SPARK, F.coalesce(F.col("inflow"), F.lit(0.0)), F.lit(dangling), n, damping)
        new = (ranks.join(inflow, "id", "left")
               .select("id", "dangling", step.alias("rank"), F.abs(step - F.col("rank")).alias("delta")))
        new = new.transform(checkpoint) if round_no % checkpoint_every == 0 else new.persist()
        row = new.agg(F.sum("delta").alias("err"),
                      F.sum(F.when(F.col("dangling"), F.col("rank")).otherwise(0.0)).alias("dm")).first()
        if cached is not None:
            cached.unpersist()
        cached = None if round_no % checkpoint_every == 0 else new
        ranks = new.drop("delta")
        err = float(row["err"] or 0.0) if row is not None else 0.0
        dangling = float(row["dm"] or 0.0) if row is not None else 0.0
        if err < n * tol:
            break
    walk.unpersist()
    return ranks.select("id", "rank")


def _dangling_mass(ranks: DataFrame) -> float:
    row = ranks.agg(F.sum(F.when(F.col("dangling"), F.col("rank")).otherwise(0.0)).alias("dm")).first()
    return float(row["dm"] or 0.0) if row is not None else 0.0
