"""The Spark engine's cases: the numpy engine's, from the flagged nodes' slice of the events, stored on write-back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pyspark.sql import DataFrame, SparkSession

from graphs.cases.build import CaseParams, build_cases
from graphs.cases.files import read_cases
from graphs.events.jsonl import read_events as read_numpy
from graphs.scorers.score import score_table
from graphs.spark.cases import case_slice, spark_cases
from graphs.spark.read import read_events
from graphs.spark.run import SparkScores
from riskservice.app import create_app
from riskservice.cases.store import list_open
from riskservice.graph_store import current_version, version_key
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import case_key
from riskservice.limits.topology import node_client
from tests.cluster_server import RedisClusterServer
from tests.conftest import ANALYST, make_settings
from tests.graphs.spark.conftest import read_rows
from tests.redis_server import RedisServer

Scored = tuple[Path, dict[str, Any], SparkScores]


def _scores(spark: SparkSession, ids: np.ndarray, anomaly: np.ndarray, kol: np.ndarray) -> DataFrame:
    return spark.createDataFrame([(str(i), float(a), float(k)) for i, a, k in zip(ids, anomaly, kol, strict=True)],
                                 "id string, anomaly double, kol double")


# "wider" flags more and pulls in sinks (unflagged recipients of a group): the candidates' events count
@pytest.mark.parametrize(("params", "sinks"), [(CaseParams(), False),
                                               (CaseParams(threshold=0.3, sink_min_senders=2, evidence=40), True)],
                         ids=["default", "wider"])
def test_given_the_same_scores_the_slice_cuts_exactly_the_numpy_cases(
        spark: SparkSession, workload: Path, params: CaseParams, sinks: bool) -> None:
    # The numpy engine's own scores fed to the Spark slice: nothing but the slice can differ, so
    # everything must be equal, member order, evidence order and truncation included (ties of
    # equal scores and equal times break on the numpy engine's first-seen order).
    path = str(workload / "events.jsonl")
    res = score_table(read_numpy(path))
    want = build_cases(res, params)
    assert len(want) >= 5 and any(c["evidence"]["truncated"] for c in want)
    pulled = sum(m["kind"] == "user" and m["anomaly"] < params.threshold for c in want for m in c["members"])
    assert (pulled > 0) == sinks
    t = res.table
    users = _scores(spark, t.users, res.anomaly.user, res.kol.user)
    devices = _scores(spark, t.devices, res.anomaly.device, res.device_kol)
    assert spark_cases(read_events(spark, path), users, devices, params) == want


def test_the_slice_holds_only_flagged_users_and_their_candidate_sinks(spark_scored: Scored) -> None:
    _, summary, res = spark_scored
    p = CaseParams()
    s = case_slice(res.events, res.users, res.devices, p)
    flagged = {r["id"] for r in s.users if r["anomaly"] >= p.threshold}
    assert {r["src"] for r in s.edges} <= flagged  # only the flagged users' edges
    fed: dict[str, set[str]] = {}
    for r in s.edges:
        fed.setdefault(r["dst"], set()).add(r["src"])
    others = {r["user"] for r in s.events} - flagged
    assert others and all(len(fed[u]) >= p.sink_min_senders for u in others)  # candidate sinks, nothing else
    assert len(s.edges) < summary["edges"]


def test_the_spark_cases_equal_the_numpy_engines(spark_scored: Scored, numpy_out: Path,
                                                 numpy_rows: dict[tuple[str, str], dict[str, object]]) -> None:
    out, summary, res = spark_scored
    rows = read_rows(out / "scores.jsonl")
    flagged = {k for k, r in rows.items() if r["anomaly"] >= 0.5}  # type: ignore[operator]
    assert flagged == {k for k, r in numpy_rows.items() if r["anomaly"] >= 0.5}, "the engines flag other nodes"
    want = read_cases(numpy_out / "cases.jsonl")
    got = read_cases(out / "cases.jsonl")
    assert summary["cases"] == len(got) and summary["cases_path"] == str(out / "cases.jsonl") and res.cases == got
    assert {"farm", "star", "ring", "hoarder", "lockstep"} <= {c["kind"] for c in want}
    assert [[(m["node"], m["kind"]) for m in c["members"]] for c in got] == [
        [(m["node"], m["kind"]) for m in c["members"]] for c in want]
    assert got == want


def _same_cases(listed: list[dict[str, Any]], on_file: list[dict[str, Any]]) -> None:
    def key(c: dict[str, Any]) -> bytes:
        return orjson.dumps([c["kind"], c["summary"], c["members"]])

    assert sorted(map(key, listed)) == sorted(map(key, on_file))


def test_a_spark_write_back_stores_the_cases_for_the_analysts(spark_run: tuple[Path, dict[str, Any]],
                                                              redis_server: RedisServer, tmp_path: Path) -> None:
    out, summary = spark_run
    on_file = read_cases(out / "cases.jsonl")
    client = redis_server.client()
    version = summary["version"]
    assert current_version(client) == version
    meta = client.hgetall(version_key(version, "meta"))  # type: ignore[arg-type]
    assert int(meta[b"cases"]) == len(on_file) > 0
    # the analysts' case list (GET /v1/review/cases) on the same Redis
    app = create_app(make_settings(redis_server.url, tmp_path), clock=ManualClock(int(time.time() * 1000)))
    listed = app.test_client().get("/v1/review/cases?limit=100", headers=ANALYST).json["cases"]  # type: ignore[index]
    _same_cases(listed, on_file)
    assert {c["version"] for c in listed} == {version}


def test_on_redis_cluster_the_cases_are_stored_in_their_slot(spark_cluster_run: tuple[Path, dict[str, Any]],
                                                             redis_cluster: RedisClusterServer) -> None:
    out, summary = spark_cluster_run
    client = redis_cluster.client()
    try:
        version = summary["version"]
        assert current_version(client) == version
        listed, _ = list_open(node_client(client, case_key("state")), version, 100, None)
        _same_cases(listed, read_cases(out / "cases.jsonl"))
    finally:
        client.close()
