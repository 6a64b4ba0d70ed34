"""Graph scores: written back as whole versions, read by decisions and the API."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from riskservice.__main__ import cli
from riskservice.graph_store import CURRENT, current_version, rollback, top, version_key, write_back
from tests.api.helpers import codes, share
from tests.conftest import ANALYST, ISSUER
from tests.redis_server import RedisServer


def row(node: str, kind: str = "user", anomaly: float = 0.0, kol: float = 0.0) -> dict[str, object]:
    return {"node": node, "kind": kind, "kol": kol, "anomaly": anomaly,
            "signals": [{"name": "device_farm", "family": "anomaly", "value": 9.0, "score": anomaly,
                         "detail": "uses a device shared by 9 accounts"}]}


def refresh(app: Flask) -> None:
    app.extensions["risk"].graph_versions.invalidate()


def test_decisions_report_scores_and_challenge_anomalous_devices(client: FlaskClient, app: Flask,
                                                                 redis_client: redis.Redis) -> None:
    assert share(client, device_id="farm-dev").json["scores"] == {"risk": 0.0, "anomaly": None, "kol": None}
    write_back(redis_client, [row("farm-dev", "device", anomaly=0.93), row("star", kol=0.71, anomaly=0.1),
                              row("edge", anomaly=0.8)])
    refresh(app)
    resp = share(client, device_id="farm-dev", user_id="someone")
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    (reason,) = resp.json["reasons"]
    assert (reason["code"], reason["observed"], reason["limit"]) == ("graph_anomaly", 0.93, 0.8)
    assert resp.json["scores"] == {"risk": 0.93, "anomaly": 0.93, "kol": 0.0}
    kol = share(client, device_id="clean-dev", user_id="star")
    assert kol.json["decision"] == "allow"
    assert kol.json["scores"] == {"risk": 0.1, "anomaly": 0.1, "kol": 0.71}
    # At the threshold fires; a user's own anomaly counts too.
    assert codes(share(client, device_id="other-dev", user_id="edge")) == ["graph_anomaly"]


def test_a_new_version_replaces_the_old_and_can_be_rolled_back(client: FlaskClient, app: Flask,
                                                               redis_client: redis.Redis) -> None:
    first = write_back(redis_client, [row("dev-x", "device", anomaly=0.95)])
    second = write_back(redis_client, [row("dev-x", "device", anomaly=0.05)])
    refresh(app)
    assert share(client, device_id="dev-x").json["decision"] == "allow"
    assert rollback(redis_client) == first
    refresh(app)
    assert codes(share(client, device_id="dev-x")) == ["graph_anomaly"]
    third = write_back(redis_client, [row("dev-x", "device", anomaly=0.5)])
    assert third == second + 1
    # Two versions are kept (current and previous); older ones are deleted.
    fourth = write_back(redis_client, [row("dev-x", "device", anomaly=0.5)])
    assert current_version(redis_client) == fourth
    assert not redis_client.exists(version_key(first, "rows"))


def test_readers_see_one_whole_version_during_a_write(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    write_back(redis_client, [row(f"n{i}", anomaly=0.1) for i in range(3000)])
    stop = threading.Event()
    seen: list[set[float]] = []

    def reader() -> None:
        client = redis_server.client()
        while not stop.is_set():
            version = int(client.get(CURRENT))
            values = client.hmget(version_key(version, "fast"), [f"u:n{i}" for i in range(0, 3000, 300)])
            seen.append({float(v.split(b",")[0]) for v in values if v is not None})
        client.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        write_back(redis_client, [row(f"n{i}", anomaly=0.9) for i in range(3000)])
        write_back(redis_client, [row(f"n{i}", anomaly=0.5) for i in range(3000)])
    finally:
        stop.set()
        thread.join()
    assert seen and all(len(values) == 1 for values in seen), "a reader saw a mix of versions"


def test_top_endpoints(client: FlaskClient, redis_client: redis.Redis) -> None:
    empty = client.get("/v1/graph/kol", headers=ANALYST).json
    assert empty == {"version": None, "written_at": None, "nodes": []}
    write_back(redis_client, [row("a", kol=0.9), row("b", kol=0.5, anomaly=0.99), row("d1", "device", kol=0.2)])
    kol = client.get("/v1/graph/kol?top=2", headers=ANALYST).json
    assert [n["node"] for n in kol["nodes"]] == ["a", "b"]
    assert kol["nodes"][0]["signals"][0]["detail"].startswith("uses a device")
    anomalies = client.get("/v1/graph/anomalies?top=1", headers=ANALYST).json
    assert [n["node"] for n in anomalies["nodes"]] == ["b"]
    assert top(redis_client, "anomaly", 5)["version"] == kol["version"]
    bad = client.get("/v1/graph/kol?top=0", headers=ANALYST)
    assert bad.status_code == 400 and "top" in bad.json["error"]["fields"]
    assert client.get("/v1/graph/kol", headers=ISSUER).status_code == 403


def test_score_cli_end_to_end_on_a_generated_workload(client: FlaskClient, app: Flask, redis_server: RedisServer,
                                                      redis_client: redis.Redis, tmp_path: Path) -> None:
    runner = CliRunner()
    work = tmp_path / "workload"
    result = runner.invoke(cli, ["simulate", "--users", "1500", "--seed", "4", "--output", str(work)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "scores"
    result = runner.invoke(cli, ["score", "--input", str(work / "events.jsonl"), "--output", str(out),
                                 "--write-back"], env={"REDIS_URL": redis_server.url})
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    rows = [orjson.loads(line) for line in (out / "scores.jsonl").read_bytes().splitlines()]
    truth = [orjson.loads(line) for line in (work / "truth.jsonl").read_bytes().splitlines()]
    assert {(r["kind"], r["node"]) for r in rows} == {(t["kind"], t["node"]) for t in truth}
    assert (out / "report.html").exists() and list(out.glob("*.png"))
    # Quality above a floor: planted fraud outranks organic nodes.
    fraud = {t["node"] for t in truth if t.get("fraud")}
    by_node = {r["node"]: r["anomaly"] for r in rows}
    mean_fraud = sum(by_node[n] for n in fraud) / len(fraud)
    mean_organic = sum(v for n, v in by_node.items() if n not in fraud) / (len(by_node) - len(fraud))
    assert mean_fraud > 0.5 > mean_organic
    # The decision path now sees the worst device.
    worst = max((r for r in rows if r["kind"] == "device"), key=lambda r: r["anomaly"])
    assert summary["version"] == current_version(redis_client)
    app.extensions["risk"].graph_versions.invalidate()
    resp = share(client, device_id=worst["node"], user_id="new-user")
    assert resp.json["scores"]["anomaly"] >= worst["anomaly"]
    assert "graph_anomaly" in codes(resp)


def test_score_cli_reads_recorded_events_without_input(client: FlaskClient, redis_server: RedisServer,
                                                       tmp_path: Path) -> None:
    for i in range(30):
        share(client, device_id=f"d{i % 3}", user_id=f"u{i % 4}", recipients=[f"r{i}", f"r{i + 1}"])
    result = CliRunner().invoke(cli, ["score", "--output", str(tmp_path / "s"), "--no-report"],
                                env={"REDIS_URL": redis_server.url})
    assert result.exit_code == 0, result.output
    nodes = {orjson.loads(line)["node"] for line in (tmp_path / "s" / "scores.jsonl").read_bytes().splitlines()}
    assert {"d0", "u3", "r0", "r30"} <= nodes
