"""The SparkSession of a scoring run, with the settings the job relies on."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

__all__ = ["checkpoint", "spark_session"]


def spark_session(master: str | None = "local[*]", *, shuffle_partitions: int | None = None,
                  checkpoint_dir: str | None = None, app_name: str = "share-graph-scoring") -> SparkSession:
    """Get or create the session; ``master=None`` leaves it to ``spark-submit``.

    ``shuffle_partitions`` defaults to Spark's own (200), which suits a
    cluster; local runs want a handful.  Iterative stages checkpoint into
    ``checkpoint_dir`` (a temporary folder by default; on a cluster, give a
    folder every executor can reach, e.g. on HDFS or S3).
    """
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        # local workers run this interpreter and import this checkout (a cluster gets both
        # from spark-submit: PYSPARK_PYTHON and --py-files)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        root = str(Path(__file__).resolve().parents[2])
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [root, *paths] if p)
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    # adaptive execution coalesces the many small shuffle partitions of small inputs
    builder = builder.config("spark.sql.adaptive.enabled", "true").config("spark.ui.showConsoleProgress", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if checkpoint_dir or not spark.conf.get("spark.checkpoint.dir", None):
        spark.sparkContext.setCheckpointDir(checkpoint_dir or os.path.join(tempfile.gettempdir(), "graphs-spark-ckpt"))
    return spark


def checkpoint(df: DataFrame) -> DataFrame:
    """Cut the lineage of an iterative stage's output.

    Local checkpoints (kept by the executors) by default: fast, and enough
    while executors live.  With ``spark.graphs.reliableCheckpoints=true``
    they go to the checkpoint folder instead, which survives losing an
    executor on a long cluster run.
    """
    reliable = df.sparkSession.conf.get("spark.graphs.reliableCheckpoints", "false") == "true"
    return df.checkpoint() if reliable else df.localCheckpoint()
