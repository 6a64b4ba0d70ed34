"""Anomaly of every user and device on DataFrames, combined as in :mod:`graphs.scorers.anomaly`."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from graphs.signals.catalog import (
    CLOSED_GROUP,
    DENSE_BLOCK,
    DEVICE_FARM,
    DEVICE_ROTATION,
    FAKE_SINK,
    FEEDER,
    HOARDER,
    LINKED_ACCOUNT,
    LOCKSTEP,
    LOW_CLAIM,
    NON_DECAYING_BURST,
    REFUSED,
    STAR_SPRAY,
    USER_FARM,
    SignalSpec,
)
from graphs.signals.formulas import noisy_or
from graphs.signals.params import ScoringParams
from graphs.spark import structural, temporal
from graphs.spark.closed import closed_groups
from graphs.spark.dense import dense_blocks
from graphs.spark.features import SparkFeatures
from graphs.spark.ops import SPARK
from graphs.spark.read import SparkEvents
from graphs.spark.receivers import pair_claims, receivers
from graphs.spark.session import checkpoint
from graphs.spark.structural import col_name

__all__ = ["SparkAnomaly", "anomaly_scores"]

_SHARER = (USER_FARM, REFUSED, LOW_CLAIM, STAR_SPRAY, DENSE_BLOCK, LOCKSTEP, NON_DECAYING_BURST, DEVICE_ROTATION,
           CLOSED_GROUP)
_INFRA = (USER_FARM, REFUSED, STAR_SPRAY, DENSE_BLOCK, DEVICE_ROTATION)


@dataclass(frozen=True)
class SparkAnomaly:
    """``users``: ``id``, ``anomaly`` and every user signal's columns; ``devices`` likewise."""

    users: DataFrame
    devices: DataFrame


def _score(spec: SignalSpec) -> Column:
    return F.col(col_name(spec, "score"))


def anomaly_scores(spark: SparkSession, ev: SparkEvents, f: SparkFeatures, p: ScoringParams) -> SparkAnomaly:
    """Sharer evidence by noisy-OR, then fake sinks, hoarders and feeders, then devices."""
    parts = [structural.user_farm(f, p), structural.refused(f, p), structural.low_claim(f, p),
             structural.star(f, p), dense_blocks(spark, f.share, p, pair_claims(ev), ev),
             temporal.lockstep(ev.events, ev.edges, p), temporal.burst(ev.events, p), structural.rotation(f, p),
             closed_groups(spark, f.share, p)]
    users = f.users.select("id", "allowed")
    for part in parts:
        users = users.join(part, "id", "left")
    users = users.fillna(0.0).withColumn("infra", noisy_or(SPARK, *(_score(s) for s in _INFRA))).transform(checkpoint)
    # a sprayer under the gate still makes sinks of the recipients it owns, by its spray score
    sink = structural.sink(f, users.select("id", "infra"), p,
                           star=users.select("id", _score(STAR_SPRAY).alias("star")))
    users = users.join(sink, "id", "left").join(receivers(ev, f, p), "id", "left").fillna(0.0)
    sharer = noisy_or(SPARK, *(_score(s) for s in _SHARER))
    users = users.withColumn("anomaly", noisy_or(SPARK, sharer, _score(FAKE_SINK), _score(HOARDER),
                                                 _score(FEEDER)))
    # the device's own farm evidence is counted once, at the device
    behaviour = noisy_or(SPARK, *(_score(s) for s in _SHARER[1:]), _score(FAKE_SINK), _score(HOARDER),
                         _score(FEEDER))
    users = users.withColumn("behaviour", behaviour).transform(checkpoint)
    worst = (f.device_user.join(users.select(F.col("id").alias("user"), "behaviour"), "user")
             .groupBy(F.col("device").alias("id")).agg(F.max("behaviour").alias(col_name(LINKED_ACCOUNT, "value"))))
    devices = (structural.device_farm(f, p).join(worst, "id", "left").fillna(0.0)
               .withColumn(col_name(LINKED_ACCOUNT, "score"), F.col(col_name(LINKED_ACCOUNT, "value"))))
    devices = devices.withColumn("anomaly", noisy_or(SPARK, _score(DEVICE_FARM), _score(LINKED_ACCOUNT)))
    return SparkAnomaly(users, devices)
