"""FRAUDAR dense blocks on Spark: weighting and pruning on the cluster, peeling on the small rest.

The share edges get FRAUDAR's column weights ``1 / log(in-degree + 5)``;
then rounds of pruning drop every sharer and recipient whose weight into
what is left is below the lowest suspicious density, each round a pair of
aggregations and semi-joins, checkpointed so the plan does not grow.  What
survives is the union of the dense cores, small on a real share graph: it
is collected and handed to the numpy engine's own block loop
(:func:`graphs.scorers.dense.blocks_after_pruning`), so both engines find
blocks the same way.

The loop's greedy peel breaks ties of equal priority by node index, and on a
share graph such ties are common (recipients of equal in-degree, sharers
with the same targets); breaking one differently can move a hundred users
in or out of a block.  So the driver numbers the collected nodes in the
numpy reader's order (sharers by their first event, then the others by
their first listing), not by id, and computes the edge weights and column
totals from the in-degrees with the numpy engine's own arithmetic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from graphs.scorers.blocks import block_signal
from graphs.scorers.dense import C_LOG, Block, blocks_after_pruning, column_weight
from graphs.signals.catalog import DENSE_BLOCK
from graphs.signals.params import ScoringParams
from graphs.spark.read import SparkEvents, intern_key
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["MAX_SURVIVING_EDGES", "dense_blocks", "numpy_order", "prune"]

#: the pruned cores are collected to the driver; refuse beyond this many edges
MAX_SURVIVING_EDGES = 5_000_000


def prune(w: DataFrame, min_density: float, max_rounds: int = 200) -> DataFrame:
    """Edges (``src``, ``dst``, ``w``) left once every node lighter than ``min_density`` is gone."""
    size = w.count()
    for _ in range(max_rounds):
        rows = w.groupBy("src").agg(F.sum("w").alias("p")).where(F.col("p") >= min_density).select("src")
        cols = w.groupBy("dst").agg(F.sum("w").alias("p")).where(F.col("p") >= min_density).select("dst")
        w = w.join(rows, "src", "left_semi").join(cols, "dst", "left_semi").transform(checkpoint)
        new_size = w.count()
        if new_size == size:
            break
        size = new_size
    return w


def numpy_order(ev: SparkEvents, nodes: DataFrame) -> list[str]:
    """The ``id`` of ``nodes`` in the order the numpy engine's reader interns them.

    It interns every sharer by its first event, then every other user by
    where it is first listed as a recipient (:func:`graphs.events.jsonl.read_events`);
    ``eid`` follows the lines of the input.
    """
    first = (ev.events.join(nodes.withColumnRenamed("id", "user"), "user")
             .groupBy(F.col("user").alias("id")).agg(F.min("eid").alias("first")))
    listed = (ev.recipients.join(nodes.withColumnRenamed("id", "dst"), "dst")
              .groupBy(F.col("dst").alias("id")).agg(F.min(F.struct("eid", "pos")).alias("listed")))
    rows = nodes.join(first, "id", "left").join(listed, "id", "left").collect()
    return [r["id"] for r in sorted(rows, key=intern_key)]


def _column_totals(deg: NDArray[np.int64]) -> NDArray[np.float64]:
    """Each column's total incoming weight, ``deg`` times its edge weight added one by one.

    The numpy engine adds the weights edge after edge (``np.bincount``); a
    product or a pairwise sum can differ in the last bit, and the closure
    tests compare against these totals.
    """
    degrees, at = np.unique(deg, return_inverse=True)
    weights = column_weight(degrees)
    sums = np.array([np.cumsum(np.full(int(d), x))[-1] for d, x in zip(degrees, weights, strict=True)])
    out: NDArray[np.float64] = sums[at]
    return out


def dense_blocks(spark: SparkSession, share: DataFrame, p: ScoringParams,
                 claims: DataFrame | None = None, ev: SparkEvents | None = None) -> DataFrame:
    """Per user in a dense, closed block: ``dense_block__value``/``__score`` and the block's details.

    ``claims`` (``src``, ``dst``, ``c``: :func:`graphs.spark.receivers.pair_claims`)
    are joined to the surviving edges for the claimed cores of
    :func:`graphs.scorers.dense.claimed_core`.  With ``ev`` (the events
    ``share`` comes from) the surviving nodes are numbered as the numpy
    engine numbers them, so ties break alike and both engines find the same
    blocks; without it, by id.
    """
    in_deg = share.groupBy("dst").agg(F.count(F.lit(1)).alias("deg"))
    w = share.join(in_deg, "dst").select("src", "dst", "deg", (1.0 / F.log(F.col("deg") + C_LOG)).alias("w")).persist()
    core = prune(w, p.dense_density[0])
    n_core = core.count()
    if n_core > MAX_SURVIVING_EDGES:
        raise RuntimeError(f"{n_core} edges survive the dense-block pruning; more than the driver should peel")
    surviving = core
    if claims is not None:
        surviving = surviving.join(claims, ["src", "dst"], "left").fillna(0.0, ["c"])
    else:
        surviving = surviving.withColumn("c", F.lit(0.0))
    edges = surviving.collect()  # the small dense cores only
    linked = share.select(F.col("src").alias("id")).union(share.select(F.col("dst").alias("id"))).distinct().count()
    if ev is not None:
        names = numpy_order(ev, core.select(F.col("src").alias("id")).union(core.select(F.col("dst").alias("id")))
                            .distinct())
    else:
        names = sorted({r["src"] for r in edges} | {r["dst"] for r in edges})
    blocks, n = _blocks(edges, names, linked, p, with_claims=claims is not None)
    sig = block_signal(blocks, n, linked, p.dense_density, p.dense_closure, p.dense_max_share)
    hit = np.flatnonzero(sig.score > 0)
    data = [(names[i], float(sig.value[i]), float(sig.score[i]), float(sig.extra["rank"][i]),
             float(sig.extra["size"][i]), float(sig.extra["closure"][i])) for i in hit]
    cols = ["id", *(col_name(DENSE_BLOCK, part) for part in ("value", "score", "rank", "size", "closure"))]
    schema = ", ".join(f"`{c}` {'string' if c == 'id' else 'double'}" for c in cols)
    return spark.createDataFrame(data, schema)


def _blocks(edges: list[Row], names: list[str], linked: int, p: ScoringParams,
            *, with_claims: bool) -> tuple[list[Block], int]:
    """The numpy engine's block loop over the collected edges, nodes numbered as ``names``."""
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    if not n:
        return [], 0
    src = np.array([index[r["src"]] for r in edges], dtype=np.int64)
    dst = np.array([index[r["dst"]] for r in edges], dtype=np.int64)
    deg = np.array([r["deg"] for r in edges], dtype=np.int64)
    # the numpy engine's arithmetic on the in-degrees, not the JVM's logarithm and sums
    mat = sp.csr_matrix((column_weight(deg), (src, dst)), shape=(n, n))
    totals = np.zeros(n)
    totals[dst] = _column_totals(deg)
    rows_ok = np.zeros(n, dtype=bool)
    rows_ok[src] = True
    cols_ok = np.zeros(n, dtype=bool)
    cols_ok[dst] = True
    claimed = sp.csr_matrix((np.array([r["c"] for r in edges], dtype=np.float64), (src, dst)), shape=(n, n))
    claimed.eliminate_zeros()
    blocks = blocks_after_pruning(mat, totals, rows_ok, cols_ok, min_density=p.dense_density[0],
                                  max_blocks=p.dense_max_blocks, min_side=p.dense_min_side,
                                  refine_below=p.dense_closure[0], patience=p.dense_patience,
                                  claims=claimed if with_claims else None,
                                  max_members=p.dense_max_share * max(linked, 1),
                                  reach_closure=p.dense_reach[0], reach_sharers=p.dense_reach[1],
                                  reach_claim=p.dense_reach_claim)
    return blocks, n
