"""Score rows from the engine's wide tables, rendered on the executors, and the files they go to.

Each partition turns its nodes' signal columns into the same rows as
:func:`graphs.scorers.rows.result_rows` (same floors, sentences, order and
rounding), as JSON lines; nothing passes through the driver.  The rows are
written as a folder of JSON-line parts and as Parquet; for a local output
the parts are then joined into one ``scores.jsonl``.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from graphs.scorers.rows import SIGNAL_FLOOR, label_entry, sort_entries
from graphs.signals.catalog import ANOMALY_USER, DEVICE_FARM, KOL_USER, LINKED_ACCOUNT, SignalSpec
from graphs.spark.structural import col_name

__all__ = ["DEVICE_SPECS", "USER_SPECS", "render_row", "render_rows", "write_rows"]

USER_SPECS: tuple[SignalSpec, ...] = (*ANOMALY_USER, *KOL_USER)
DEVICE_SPECS: tuple[SignalSpec, ...] = (DEVICE_FARM, LINKED_ACCOUNT)


def _entry(spec: SignalSpec, rec: dict[str, Any]) -> dict[str, Any] | None:
    score = float(rec[col_name(spec, "score")] or 0.0)
    if score < SIGNAL_FLOOR.get(spec.family, 0.1):
        return None
    value = float(rec[col_name(spec, "value")] or 0.0)
    fields = {x: float(rec[col_name(spec, x)] or 0.0) for x in spec.extras}
    return {"name": spec.name, "family": spec.family, "value": round(value, 4), "score": round(score, 4),
            "detail": spec.detail.format(value=value, **fields)}


def render_row(rec: dict[str, Any], kind: str, specs: Sequence[SignalSpec]) -> dict[str, Any]:
    """One score row from one record of the wide table (``id``, ``kol``, ``anomaly``, ``label``, signals).

    Examples
    --------
    >>> rec = {"id": "d1", "kol": 0.25, "anomaly": 1.0, "label": None, "device_farm__value": 9.0,
    ...        "device_farm__score": 1.0, "linked_account__value": 0.0, "linked_account__score": 0.0}
    >>> render_row(rec, "device", DEVICE_SPECS)["signals"][0]["detail"]
    '9 accounts shared from this device'
    """
    entries = [e for e in (_entry(s, rec) for s in specs) if e is not None]
    signals = sort_entries(entries)
    if rec.get("label") is not None:
        signals.append(label_entry(int(rec["label"])))
    return {"node": rec["id"], "kind": kind, "kol": round(float(rec["kol"] or 0.0), 6),
            "anomaly": round(float(rec["anomaly"] or 0.0), 6), "signals": signals}


def _renderer(kind: str, specs: Sequence[SignalSpec]):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            rows = [render_row(rec, kind, specs) for rec in b.to_pylist()]
            yield pa.RecordBatch.from_arrays(
                [pa.array([r["node"] for r in rows], pa.string()), pa.array([kind] * len(rows), pa.string()),
                 pa.array([r["kol"] for r in rows], pa.float64()), pa.array([r["anomaly"] for r in rows], pa.float64()),
                 pa.array([orjson.dumps(r["signals"]).decode() for r in rows], pa.string()),
                 pa.array([orjson.dumps(r).decode() for r in rows], pa.string())],
                names=["node", "kind", "kol", "anomaly", "signals", "line"])
    return run


def render_rows(table: DataFrame, kind: str, specs: Sequence[SignalSpec]) -> DataFrame:
    """``node``, ``kind``, ``kol``, ``anomaly``, ``signals`` (JSON) and the row's JSON ``line``."""
    cols = ["id", "kol", "anomaly", "label",
            *(col_name(s, part) for s in specs for part in ("value", "score", *s.extras))]
    schema = "node string, kind string, kol double, anomaly double, signals string, line string"
    return table.select(*cols).mapInArrow(_renderer(kind, specs), schema)


def write_rows(rows: DataFrame, output_dir: str) -> dict[str, str]:
    """Write ``scores.parquet/`` and the JSON-line parts; join the parts into ``scores.jsonl`` when local."""
    parquet = os.path.join(output_dir, "scores.parquet")
    parts = os.path.join(output_dir, "scores.jsonl.parts")
    rows.persist()
    rows.drop("line").write.mode("overwrite").parquet(parquet)
    rows.select(F.col("line")).write.mode("overwrite").text(parts)
    out = {"parquet_path": parquet, "parts_path": parts}
    if os.path.isdir(parts):  # a local folder: one file, as the numpy engine writes
        path = os.path.join(output_dir, "scores.jsonl")
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "wb") as dst:
            for part in sorted(glob.glob(os.path.join(parts, "part-*"))):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst)
        os.replace(tmp, path)
        shutil.rmtree(parts)
        out = {"parquet_path": parquet, "scores_path": path}
    rows.unpersist()
    return out
