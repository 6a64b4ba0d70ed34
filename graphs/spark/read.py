"""Share events into Spark: JSON lines or a Parquet folder, to the engine's columns.

The columns follow :func:`graphs.events.jsonl.read_events`: a missing
decision is ``allow``, a missing outcome count is -1, the recipient count is
the length of ``recipients`` when listed, else ``recipient_count``.  Ids stay
strings (users and devices are separate id spaces, as in the numpy engine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from graphs.events.table import ALLOW, BLOCK, CHALLENGE, LABELS, MISSING

__all__ = ["EVENT_SCHEMA", "SparkEvents", "intern_key", "read_events"]

#: the fields the job reads; other fields of the export are ignored
EVENT_SCHEMA = T.StructType([
    T.StructField("user_id", T.StringType()), T.StructField("device_id", T.StringType()),
    T.StructField("coupon_id", T.StringType()), T.StructField("ts", T.DoubleType()),
    T.StructField("decision", T.StringType()), T.StructField("recipients", T.ArrayType(T.StringType())),
    T.StructField("recipient_count", T.LongType()), T.StructField("delivered", T.LongType()),
    T.StructField("opened", T.LongType()), T.StructField("claimed", T.LongType()),
    T.StructField("label", T.StringType()),
])


@dataclass(frozen=True)
class SparkEvents:
    """``events``: one row per decision (``eid``, ``user``, ``device``, ``coupon``, ``ts``,
    ``decision``, ``n_rec``, ``delivered``, ``claimed``, ``label``, ``named``: it delivered to
    listed recipients, so it has edges); ``edges``: delivered
    ``src -> dst`` per event (``eid``, ``pos`` in the event's list, ``coupon``, ``ts``);
    ``attempts``: recipients of refused shares (``src``, ``dst``); ``users``: every user id
    (sharers and recipients); ``recipients``: every listed recipient, delivered or not
    (``eid``, ``pos``, ``dst``: where an id is first seen, which orders ids as the numpy
    engine interns them)."""

    events: DataFrame
    edges: DataFrame
    attempts: DataFrame
    users: DataFrame
    recipients: DataFrame


def _is_parquet(path: str) -> bool:
    if os.path.isdir(path):
        return any(n.endswith(".parquet") for n in os.listdir(path))
    return path.rstrip("/").endswith(".parquet")


def _raw(spark: SparkSession, path: str) -> DataFrame:
    if not _is_parquet(path):
        return spark.read.schema(EVENT_SCHEMA).json(path)
    raw = spark.read.parquet(path)
    # optional fields absent from a Parquet export are null, as a missing JSON key is
    return raw.withColumns({f.name: F.lit(None).cast(f.dataType) for f in EVENT_SCHEMA.fields
                            if f.name not in raw.columns})


def read_events(spark: SparkSession, path: str) -> SparkEvents:
    """Read and normalise the events at ``path`` (a JSON-lines file or folder, or a Parquet folder)."""
    raw = _raw(spark, path)
    decision = (F.when(F.col("decision") == "challenge", CHALLENGE)
                .when(F.col("decision") == "block", BLOCK).otherwise(ALLOW))
    label = F.when(F.col("label") == "fraud", LABELS["fraud"]).when(F.col("label") == "legit", LABELS["legit"])
    n_listed = F.coalesce(F.size("recipients"), F.lit(-1))
    delivered = F.coalesce(F.col("delivered"), F.lit(MISSING))
    # a share names its recipients when it delivered to listed accounts: it has edges (as in numpy)
    named = (decision == ALLOW) & (delivered != 0) & (n_listed > 0)
    events = raw.select(
        F.monotonically_increasing_id().alias("eid"),
        F.col("user_id").cast("string").alias("user"), F.col("device_id").cast("string").alias("device"),
        F.col("coupon_id").cast("string").alias("coupon"), F.col("ts").cast("double").alias("ts"),
        decision.alias("decision"),
        F.when(n_listed > 0, n_listed).otherwise(F.coalesce(F.col("recipient_count"), F.lit(0)))
        .cast("long").alias("n_rec"),
        delivered.cast("long").alias("delivered"),
        F.coalesce(F.col("claimed"), F.lit(MISSING)).cast("long").alias("claimed"),
        label.alias("label"), named.alias("named"), F.col("recipients"),
    ).persist()
    rec = events.select("eid", "coupon", "ts", F.col("user").alias("src"), "decision", "delivered",
                        F.posexplode("recipients").alias("pos", "dst"))
    # only allowed shares reach their recipients; an outcome of 0 delivered carries nothing either
    carries = (F.col("decision") == ALLOW) & (F.col("delivered") != 0)
    edges = rec.where(carries).select("eid", "pos", "coupon", "ts", "src", "dst").persist()
    attempts = rec.where(~carries).select("src", "dst")
    users = (events.select(F.col("user").alias("id"))
             .union(rec.select(F.col("dst").alias("id"))).distinct().persist())
    return SparkEvents(events.drop("recipients"), edges, attempts, users, rec.select("eid", "pos", "dst"))


def intern_key(row: Row) -> tuple[int, int, int]:
    """Where the numpy reader (:func:`graphs.events.jsonl.read_events`) interns
    a user: sharers by their first event (``first``: its ``eid``), then the
    others by where they are first listed as a recipient (``listed``: the
    ``eid`` and ``pos`` of that listing)."""
    if row["first"] is not None:
        return (0, int(row["first"]), 0)
    return (1, int(row["listed"]["eid"]), int(row["listed"]["pos"]))
