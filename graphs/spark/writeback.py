"""Scores into Redis from the executors: partition by partition, pipelined, then one version flip.

The driver reserves a version (:func:`riskservice.graph_store.begin_version`);
every partition opens its own connection and writes its nodes' rows, fast
entries and adjacency lists with :func:`riskservice.graph_store.write_rows`
(pipelined, and idempotent, so a retried task writes the same again); the
driver then makes the version current in one step
(:func:`riskservice.graph_store.activate`).  Readers keep the previous
version until that flip.  The run's cases (cut on the driver,
:mod:`graphs.spark.cases`) are stored with the version just before the flip,
as the numpy engine's write-back stores its own
(:func:`riskservice.cases.store.write_cases`).

On Redis Cluster (``cluster=True``) every connection is a cluster client
(``redis.RedisCluster.from_url``, any node's URL): ``write_rows`` then writes
each node's hash in the node's own slot and the top lists under the
``{graph}`` tag, the layout the decision path reads there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from pyspark.sql import DataFrame, Row, Window
from pyspark.sql import functions as F

from graphs.spark.run import SparkScores

__all__ = ["ADJACENCY_LIMIT", "adjacency_lists", "write_back"]

#: heaviest neighbours kept per list, as the numpy engine's node_adjacency
ADJACENCY_LIMIT = 50


def _top(edges: DataFrame, key: str, other: str, name: str, limit: int) -> DataFrame:
    order = Window.partitionBy(key).orderBy(F.col("w").desc(), F.col(other))
    top = edges.withColumn("r", F.row_number().over(order)).where(F.col("r") <= limit)
    return top.groupBy(F.col(key).alias("id")).agg(
        F.array_sort(F.collect_list(F.struct("r", F.col(other).alias("n"), "w"))).alias(name))


def adjacency_lists(res: SparkScores, limit: int = ADJACENCY_LIMIT) -> tuple[DataFrame, DataFrame]:
    """Per user ``out``, ``in``, ``devices`` and per device ``users``: lists of (rank, id, weight)."""
    share = res.events.edges.groupBy("src", "dst").agg(F.count(F.lit(1)).cast("double").alias("w"))
    du = (res.events.events.where(F.col("device").isNotNull()).groupBy("device", "user")
          .agg(F.count(F.lit(1)).cast("double").alias("w")))
    users = (_top(share, "src", "dst", "out", limit).join(_top(share, "dst", "src", "in", limit), "id", "full")
             .join(_top(du, "user", "device", "devices", limit), "id", "full"))
    devices = _top(du, "device", "user", "users", limit)
    return users, devices


def _lists(rec: Row, names: tuple[str, ...]) -> dict[str, list[list[Any]]]:
    out = {}
    for name in names:
        items = rec[name]
        if items:
            out[name] = [[x["n"], float(x["w"])] for x in items]
    return out


def _connect(url: str, cluster: bool) -> Any:
    """A client of the Redis (or, ``cluster``, the Redis Cluster) at ``url``."""
    import redis

    if cluster:
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def _writer(url: str, version: int, queue_threshold: float | None, cluster: bool):  # type: ignore[no-untyped-def]
    def run(records: Iterator[Row]) -> None:
        from riskservice.graph_store import write_rows

        client = _connect(url, cluster)
        try:
            rows, adjacency, reach = [], [], {}
            for rec in records:
                row = orjson.loads(rec["line"])
                rows.append(row)
                names = ("out", "in", "devices") if row["kind"] == "user" else ("users",)
                lists = _lists(rec, names)
                if lists:
                    adjacency.append((row["kind"], row["node"], lists))
                if row["kind"] == "user" and rec["reach"]:
                    reach[row["node"]] = int(rec["reach"])
                if len(rows) >= 2000:  # keep a partition's memory bounded
                    write_rows(client, version, rows, adjacency, reach, queue_threshold)
                    rows, adjacency, reach = [], [], {}
            write_rows(client, version, rows, adjacency, reach, queue_threshold)
        finally:
            client.close()
    return run


def write_back(res: SparkScores, url: str, *, source: str = "", queue_threshold: float | None = None,
               cluster: bool = False) -> int:
    """Write every row from the executors and the run's cases into the Redis at ``url``; flip to the
    new version; return it.

    Parameters
    ----------
    res : SparkScores
        The scoring run's DataFrames.
    url : str
        The Redis URL (on a cluster: any node's).
    source : str
        What was scored, kept in the version's metadata.
    queue_threshold : float or None
        Devices at or above this anomaly enter the review queue.
    cluster : bool
        The URL names a Redis Cluster node: write the cluster layout.

    Returns
    -------
    int
        The version made current.
    """
    from riskservice.cases.store import write_cases
    from riskservice.graph_store import activate, begin_version, current_version
    from riskservice.limits.keys import case_key
    from riskservice.limits.topology import node_client

    res = res.with_cases()  # (cut here when the caller did not: a write-back always stores cases)
    assert res.cases is not None
    driver = _connect(url, cluster)
    try:
        version = begin_version(driver)
        users_adj, devices_adj = adjacency_lists(res)
        reach = res.events.edges.groupBy(F.col("src").alias("id")).agg(F.countDistinct("dst").alias("reach"))
        user_rows = (res.rows.where(F.col("kind") == "user").select(F.col("node").alias("id"), "line")
                     .join(users_adj, "id", "left").join(reach, "id", "left")
                     .withColumn("users", F.lit(None).cast("array<struct<r:int,n:string,w:double>>")))
        device_rows = (res.rows.where(F.col("kind") == "device").select(F.col("node").alias("id"), "line")
                       .join(devices_adj, "id", "left")
                       .withColumns({name: F.lit(None).cast("array<struct<r:int,n:string,w:double>>")
                                     for name in ("out", "in", "devices")})
                       .withColumn("reach", F.lit(None).cast("long")))
        cols = ["line", "out", "in", "devices", "users", "reach"]
        both = user_rows.select(*cols).unionByName(device_rows.select(*cols))
        both.foreachPartition(_writer(url, version, queue_threshold, cluster))
        count = res.rows.count()
        # every case key is in the {cases} slot: its master takes the transaction
        stored = write_cases(node_client(driver, case_key("state")), version, res.cases, current_version(driver))
        activate(driver, version, {"written_at": time.time(), "nodes": count, "source": source,
                                   "engine": "spark", "cases": stored})
    finally:
        driver.close()
    return version
