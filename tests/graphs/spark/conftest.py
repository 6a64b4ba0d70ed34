"""One local SparkSession and one Spark scoring run (through the CLI) for every Spark test.

``local[2]`` with two shuffle partitions: the engine's plans stay small and
the whole Spark suite runs one scoring of a small simulated workload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession

from graphs.run import run_score
from graphs.spark.session import spark_session
from graphs.workload.simulate import write_workload
from riskservice.__main__ import cli
from tests.redis_server import RedisServer


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
def numpy_rows(workload: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, object]]:
    out = tmp_path_factory.mktemp("numpy-scores")
    run_score(str(workload / "events.jsonl"), out, progress=False, report=False)
    return read_rows(out / "scores.jsonl")


@pytest.fixture(scope="session")
def spark_run(spark: SparkSession, workload: Path, redis_server: RedisServer,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """``score --engine spark --write-back`` on the workload, in this process (it reuses the session)."""
    out = tmp_path_factory.mktemp("spark-scores")
    redis_server.client().flushall()
    result = CliRunner().invoke(
        cli, ["score", "--engine", "spark", "--master", "local[2]", "--shuffle-partitions", "2", "--write-back",
              "--input", str(workload / "events.jsonl"), "--output", str(out)],
        env={"REDIS_URL": redis_server.url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, orjson.loads(result.output[result.output.index("{"):])
