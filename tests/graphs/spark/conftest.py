"""One local SparkSession and one Spark scoring run for every Spark test.

``local[2]`` with two shuffle partitions: the engine's plans stay small and
the whole Spark suite runs one scoring of a small simulated workload. Its
scores are written back (``score --write-back``'s own step) into one Redis
and into a real Redis Cluster: scoring twice would double the suite's
Spark time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession

from graphs.run import run_score
from graphs.spark.run import SparkScores, spark_score
from graphs.spark.session import spark_session
from graphs.workload.simulate import write_workload
from riskservice.__main__ import spark_write_back
from tests.cluster.fixtures import redis_cluster
from tests.cluster_server import RedisClusterServer
from tests.redis_server import RedisServer

__all__ = ["redis_cluster"]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    session = spark_session("local[2]", shuffle_partitions=2,
                            checkpoint_dir=str(tmp_path_factory.mktemp("spark-checkpoints")))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("spark-workload")
    # the mixed profile: every fraud kind, hoarders and feeders and slow lockstep included
    write_workload(d, 600, seed=4, profile="mixed")
    return d


def read_rows(path: Path) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["kind"], r["node"]): r for r in map(orjson.loads, path.read_bytes().splitlines())}


@pytest.fixture(scope="session")
def numpy_out(workload: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The numpy engine's output folder for the workload (``scores.jsonl``, ``cases.jsonl``)."""
    out = tmp_path_factory.mktemp("numpy-scores")
    run_score(str(workload / "events.jsonl"), out, progress=False, report=False)
    return out


@pytest.fixture(scope="session")
def numpy_rows(numpy_out: Path) -> dict[tuple[str, str], dict[str, object]]:
    return read_rows(numpy_out / "scores.jsonl")


@pytest.fixture(scope="session")
def spark_scored(spark: SparkSession, workload: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], SparkScores]:
    """One Spark scoring of the workload (what ``score --engine spark`` runs), for every Spark test."""
    out = tmp_path_factory.mktemp("spark-scores")
    summary, res = spark_score(workload / "events.jsonl", out, spark=spark)
    return out, summary, res


def _write_back(scored: tuple[Path, dict[str, Any], SparkScores], env: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """``--write-back``'s step (``riskservice.__main__.spark_write_back``) under the service's settings ``env``."""
    out, summary, res = scored
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RISK_REDIS_CLUSTER", raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        return out, {**summary, "version": spark_write_back(res, "events.jsonl")}


@pytest.fixture(scope="session")
def spark_run(spark_scored: tuple[Path, dict[str, Any], SparkScores],
              redis_server: RedisServer) -> tuple[Path, dict[str, Any]]:
    """The scores written back into one Redis."""
    redis_server.client().flushall()
    return _write_back(spark_scored, {"REDIS_URL": redis_server.url})


@pytest.fixture(scope="session")
def spark_cluster_run(spark_scored: tuple[Path, dict[str, Any], SparkScores],
                      redis_cluster: RedisClusterServer) -> tuple[Path, dict[str, Any]]:
    """The same scores written back into a real 3-master Redis Cluster."""
    client = redis_cluster.client()
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    client.close()
    return _write_back(spark_scored, {"REDIS_URL": redis_cluster.url, "RISK_REDIS_CLUSTER": "1"})
