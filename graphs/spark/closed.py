"""Closed groups on Spark: what the world's shares cannot reach, collected and grouped by numpy.

:mod:`graphs.scorers.closed` needs strongly connected parts, which are not
a join.  But a closed group is small and nothing from the world enters it,
so the cluster first takes away every account the world provably reaches:
an account with more than ``max_size - 1`` sharers that received shares
themselves cannot sit in a closed part of at most ``max_size`` accounts,
and whatever such an account (or any account it taints) shares to is tied
to the world too.  Rounds of one semi-join spread that taint to its fixed
point; the shares into untainted accounts (from untainted accounts or from
accounts that never received one) are all a closed group can be made of.
They are collected and handed to the numpy engine's own
:func:`graphs.scorers.closed.closed_group_signal`, so both engines find the
same groups.  Nothing is lost: an untainted account's every sharer is in
what is collected, with its true in-degree.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from graphs.scorers.closed import closed_group_signal
from graphs.signals.catalog import CLOSED_GROUP
from graphs.signals.params import ScoringParams
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["MAX_OPEN_EDGES", "closed_groups", "untainted_edges"]

#: the shares no hub reaches are collected to the driver; refuse beyond this many
MAX_OPEN_EDGES = 5_000_000


def untainted_edges(share: DataFrame, max_size: int, max_rounds: int = 200) -> DataFrame:
    """Distinct shares (``src``, ``dst``) into accounts the world's shares provably do not reach."""
    edges = share.select("src", "dst").where(F.col("src") != F.col("dst")).distinct().persist()
    received = edges.select(F.col("dst").alias("src")).distinct()
    # shares from accounts that received something: only these tie a part to the world
    tying = edges.join(received, "src", "left_semi").persist()
    tainted = (tying.groupBy("dst").agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > max_size - 1)
               .select(F.col("dst").alias("id")).transform(checkpoint))
    size = tainted.count()
    for _ in range(max_rounds):
        reached = (tying.join(tainted.select(F.col("id").alias("src")), "src", "left_semi")
                   .select(F.col("dst").alias("id")))
        tainted = tainted.union(reached).distinct().transform(checkpoint)
        new_size = tainted.count()
        if new_size == size:
            break
        size = new_size
    return edges.join(tainted.select(F.col("id").alias("dst")), "dst", "left_anti")


def closed_groups(spark: SparkSession, share: DataFrame, p: ScoringParams) -> DataFrame:
    """Per user in a closed group: ``closed_group__value``/``__score``/``__size``."""
    rows = untainted_edges(share, p.closed_size[1]).collect()
    if len(rows) > MAX_OPEN_EDGES:
        raise RuntimeError(f"{len(rows)} shares are out of the world's reach; more than the driver should group")
    names = sorted({r["src"] for r in rows} | {r["dst"] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    src = np.array([index[r["src"]] for r in rows], dtype=np.int64)
    dst = np.array([index[r["dst"]] for r in rows], dtype=np.int64)
    mat = sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    sig = closed_group_signal(mat, p.closed_per_member, min_size=p.closed_size[0], max_size=p.closed_size[1])
    hit = np.flatnonzero(sig.score > 0)
    data = [(names[i], float(sig.value[i]), float(sig.score[i]), float(sig.extra["size"][i])) for i in hit]
    cols = ["id", *(col_name(CLOSED_GROUP, part) for part in ("value", "score", "size"))]
    schema = ", ".join(f"`{c}` {'string' if c == 'id' else 'double'}" for c in cols)
    return spark.createDataFrame(data, schema)
