"""Cases from a Spark run: the numpy engine's :mod:`graphs.cases`, on the slice of the graph they need.

A case is cut around flagged nodes (anomaly at least the threshold), and
flagged nodes are few. So the executors select the events that can matter
and only those come to the driver, where :func:`graphs.cases.build.cases_of`
(the numpy engine's own case logic, unchanged) cuts and describes the cases.

What is collected, and why it is enough:

- every event of a **flagged user**, with its delivered edges: the share,
  device and lockstep ties (:mod:`graphs.cases.ties`) only link flagged
  users, flagged devices reach a case only through a flagged user's events,
  and a case's recipients and evidence are its flagged users' edges;
- every event (without edges) of each **candidate sink**: an unflagged
  recipient fed by at least ``sink_min_senders`` flagged users, a superset
  of the sinks :func:`graphs.cases.ties.pull_sinks` may pull in, whose
  events count in a case's stats;
- per node of that slice: its anomaly and KOL from the Spark scores, its
  distinct senders in the whole graph (a sink needs its group's senders to
  be half of them), and where its id is first seen in the input, per coupon
  too: the slice's ids are then indexed in the order the numpy engine
  interns the whole graph's, so ties (equal scores, equal times) break the
  same way.

The slice grows with the flagged users' own activity and their candidate
sinks' (each needs several flagged senders), not with the number of events:
the rest of the graph stays on the executors.

On one JSON-lines file the cases equal the numpy engine's whenever the two
engines flag the same nodes (tests/graphs/spark/test_cases.py). Event order
is the read order (``monotonically_increasing_id``); on a folder of files
that is Spark's file order, which the numpy engine (one file) has no
counterpart for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from graphs.cases.build import CaseParams, NodeScores, cases_of
from graphs.events.table import MISSING, EventTable
from graphs.spark.read import SparkEvents, intern_key

__all__ = ["EVENT_COLUMNS", "CaseSlice", "case_slice", "slice_table", "spark_cases"]

#: the events' columns the slice keeps (``opened`` is not read by the Spark engine)
EVENT_COLUMNS = ("eid", "user", "device", "coupon", "ts", "decision", "n_rec", "delivered", "claimed")


@dataclass(frozen=True)
class CaseSlice:
    """The collected slice: ``events`` and flagged users' ``edges`` (rows), and per id of the slice
    ``users`` (anomaly, KOL, senders, first seen), ``devices`` (anomaly, KOL, first seen) and
    ``coupons`` (first seen)."""

    events: list[Row]
    edges: list[Row]
    users: list[Row]
    devices: list[Row]
    coupons: list[Row]


def _first_event(events: DataFrame, key: str, ids: DataFrame) -> DataFrame:
    """The first event (smallest ``eid``) of each id in ``ids`` (column ``id``) under ``key``."""
    return (events.join(ids.withColumnRenamed("id", key), key).groupBy(F.col(key).alias("id"))
            .agg(F.min("eid").alias("first")))


def case_slice(ev: SparkEvents, users: DataFrame, devices: DataFrame, p: CaseParams) -> CaseSlice:
    """Select the slice on the executors and collect it (see the module's docstring).

    ``users`` and ``devices`` are the scored tables (``id``, ``anomaly``, ``kol``).
    """
    flagged = users.where(F.col("anomaly") >= p.threshold).select("id")
    out = ev.edges.join(flagged.withColumnRenamed("id", "src"), "src").select("eid", "pos", "src", "dst").persist()
    candidates = (out.join(flagged.withColumnRenamed("id", "dst"), "dst", "left_anti").groupBy("dst")
                  .agg(F.countDistinct("src").alias("n")).where(F.col("n") >= p.sink_min_senders)
                  .select(F.col("dst").alias("id")))
    sharers = flagged.unionByName(candidates)
    events = ev.events.join(sharers.withColumnRenamed("id", "user"), "user").select(*EVENT_COLUMNS).persist()
    ids = sharers.unionByName(out.select(F.col("dst").alias("id"))).distinct().persist()
    senders = (ev.edges.join(ids.withColumnRenamed("id", "dst"), "dst").groupBy(F.col("dst").alias("id"))
               .agg(F.countDistinct("src").alias("senders")))
    # numpy interns sharers first (by first event), then recipients never sharing (by first listing)
    as_recipient = (ev.recipients.join(ids.withColumnRenamed("id", "dst"), "dst").groupBy(F.col("dst").alias("id"))
                    .agg(F.min(F.struct("eid", "pos")).alias("listed")))
    user_rows = (ids.join(users.select("id", "anomaly", "kol"), "id", "left").join(senders, "id", "left")
                 .join(_first_event(ev.events, "user", ids), "id", "left").join(as_recipient, "id", "left")
                 .collect())
    device_ids = events.where(F.col("device").isNotNull()).select(F.col("device").alias("id")).distinct()
    device_rows = (device_ids.join(devices.select("id", "anomaly", "kol"), "id", "left")
                   .join(_first_event(ev.events, "device", device_ids), "id", "left").collect())
    coupon_rows = _first_event(ev.events, "coupon", events.select(F.col("coupon").alias("id")).distinct()).collect()
    sliced = CaseSlice(events.collect(), out.collect(), user_rows, device_rows, coupon_rows)
    for df in (out, events, ids):
        df.unpersist()
    return sliced


def _names(rows: list[Row], key: Any) -> tuple[NDArray[np.object_], dict[str, int], list[Row]]:
    ordered = sorted(rows, key=key)
    names = np.empty(len(ordered), dtype=object)
    names[:] = [r["id"] for r in ordered]
    return names, {r["id"]: i for i, r in enumerate(ordered)}, ordered


def _column(rows: list[Row], field: str, dtype: Any, missing: Any = 0) -> NDArray[Any]:
    return np.array([missing if r[field] is None else r[field] for r in rows], dtype=dtype)


def slice_table(s: CaseSlice) -> tuple[EventTable, NodeScores]:
    """The slice as an :class:`~graphs.events.table.EventTable` (ids in the numpy engine's order,
    events in read order) and the :class:`~graphs.cases.build.NodeScores` of its nodes."""
    users, uidx, user_rows = _names(s.users, intern_key)
    devices, didx, device_rows = _names(s.devices, lambda r: int(r["first"]))
    coupons, cidx, _ = _names(s.coupons, lambda r: int(r["first"]))
    events = sorted(s.events, key=lambda r: int(r["eid"]))
    row_of = {int(r["eid"]): i for i, r in enumerate(events)}
    edges = sorted(s.edges, key=lambda r: (int(r["eid"]), int(r["pos"])))
    n_ev = len(events)

    def ints(values: list[int], dtype: Any = np.int32) -> NDArray[Any]:
        return np.array(values, dtype=dtype).reshape(-1)

    table = EventTable(
        users=users, devices=devices, coupons=coupons,
        sharer=ints([uidx[r["user"]] for r in events]),
        device=ints([MISSING if r["device"] is None else didx[r["device"]] for r in events]),
        coupon=ints([cidx[r["coupon"]] for r in events]),
        ts=np.array([float(r["ts"]) for r in events], dtype=np.float64).reshape(-1),
        decision=ints([int(r["decision"]) for r in events], np.int8),
        n_recipients=ints([int(r["n_rec"]) for r in events]),
        delivered=ints([int(r["delivered"]) for r in events]), opened=np.full(n_ev, MISSING, np.int32),
        claimed=ints([int(r["claimed"]) for r in events]),
        edge_src=ints([uidx[r["src"]] for r in edges]), edge_dst=ints([uidx[r["dst"]] for r in edges]),
        edge_event=ints([row_of[int(r["eid"])] for r in edges]),
        user_label=np.full(users.size, MISSING, np.int8), device_label=np.full(devices.size, MISSING, np.int8))
    scores = NodeScores(
        user_anomaly=_column(user_rows, "anomaly", np.float64),
        device_anomaly=_column(device_rows, "anomaly", np.float64),
        user_kol=_column(user_rows, "kol", np.float64), device_kol=_column(device_rows, "kol", np.float64),
        senders=_column(user_rows, "senders", np.int64))
    return table, scores


def spark_cases(ev: SparkEvents, users: DataFrame, devices: DataFrame,
                params: CaseParams | None = None) -> list[dict[str, Any]]:
    """The cases of a Spark run, worst first, as :func:`graphs.cases.build.build_cases` gives them.

    ``users`` and ``devices`` are the run's scored tables (``id``, ``anomaly``, ``kol``).
    """
    p = params or CaseParams()
    table, scores = slice_table(case_slice(ev, users, devices, p))
    if not (scores.user_anomaly >= p.threshold).any():  # no flagged user: no tie, no case
        return []
    return cases_of(table, scores, p)
