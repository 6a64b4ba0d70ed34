"""``--write-back`` from the Spark engine: rows, fast entries and adjacency from the executors, one flip."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from config.settings import DEFAULT_POLICY_FILE
from graphs.events.jsonl import read_events
from graphs.features.adjacency import distinct_recipients, node_adjacency
from riskservice.__main__ import cli
from riskservice.graph_store import current_version, lookup, version_key
from riskservice.limits.keys import REVIEW_QUEUE
from riskservice.policy.load import load_policy
from riskservice.review.queue import list_devices
from tests.cluster_server import RedisClusterServer
from tests.graphs.spark.conftest import read_rows
from tests.redis_server import RedisServer


def test_every_row_is_written_and_the_version_is_current(spark_run: tuple[Path, dict[str, object]],
                                                         redis_server: RedisServer, workload: Path) -> None:
    out, summary = spark_run
    client = redis_server.client()
    version = summary["version"]
    assert current_version(client) == version
    rows = read_rows(out / "scores.jsonl")
    assert client.hlen(version_key(version, "rows")) == len(rows)  # type: ignore[arg-type]
    meta = client.hgetall(version_key(version, "meta"))  # type: ignore[arg-type]
    assert int(meta[b"nodes"]) == len(rows) and meta[b"engine"] == b"spark"
    table = read_events(str(workload / "events.jsonl"))
    reach = distinct_recipients(table)
    adjacency = {(k, n): lists for k, n, lists in node_adjacency(table)}
    for (kind, node), row in list(rows.items())[:200]:
        stored, adj = lookup(client, kind, node)
        assert stored == row
        expected = adjacency.get((kind, node))
        if expected is None:
            assert adj is None
        else:  # the same neighbours and weights (ties may be listed in another order)
            assert adj is not None and set(adj) == set(expected)
            for name, items in expected.items():
                assert sorted(map(tuple, adj[name])) == sorted(map(tuple, items)) or len(items) == 50
        fast = client.hget(version_key(version, "fast"), f"{kind[0]}:{node}")  # type: ignore[arg-type]
        parts = fast.decode().split(",")  # type: ignore[union-attr]
        assert float(parts[0]) == round(row["anomaly"], 4)  # type: ignore[arg-type]
        if kind == "user":
            assert int(parts[2]) == reach.get(node, 0)


def test_flagged_devices_enter_the_review_queue(spark_run: tuple[Path, dict[str, object]],
                                                redis_server: RedisServer) -> None:
    rows = read_rows(spark_run[0] / "scores.jsonl")
    client = redis_server.client()
    threshold = load_policy(DEFAULT_POLICY_FILE).review.anomaly_threshold
    flagged = {n for (k, n), r in rows.items() if k == "device" and r["anomaly"] >= threshold}
    queued = {m.decode() for m in client.zrange(REVIEW_QUEUE, 0, -1)}  # type: ignore[union-attr]
    assert flagged and flagged == queued


def test_on_redis_cluster_every_node_is_readable_where_the_decision_path_reads_it(
        spark_cluster_run: tuple[Path, dict[str, object]], redis_cluster: RedisClusterServer) -> None:
    out, summary = spark_cluster_run
    rows = read_rows(out / "scores.jsonl")
    client = redis_cluster.client()
    try:
        assert current_version(client) == summary["version"]
        for (kind, node), row in rows.items():
            stored, _ = lookup(client, kind, node)
            assert stored == row, (kind, node)
        threshold = load_policy(DEFAULT_POLICY_FILE).review.anomaly_threshold
        flagged = {n for (k, n), r in rows.items() if k == "device" and r["anomaly"] >= threshold}
        page = list_devices(client, limit=1000)  # type: ignore[arg-type]
        assert flagged and {d["device_id"] for d in page["devices"]} == flagged
    finally:
        client.close()


def test_the_spark_engine_needs_an_input_file() -> None:
    result = CliRunner().invoke(cli, ["score", "--engine", "spark", "--write-back", "--output", "/tmp/never"])
    assert result.exit_code == 2 and "--engine spark reads --input" in result.output
