"""The whole service on a real 3-master Redis Cluster, through HTTP (Flask's
test client): decisions with every rule, replays, outcomes, challenges, bans,
review queue, actions with their audit entries, graph scores, the event
export, the same as on one Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from riskservice.__main__ import cli
from riskservice.app import create_app
from riskservice.backtest import run_backtest
from riskservice.deployment import UnsupportedRedis, check_deployment
from riskservice.events import read_events
from riskservice.graph_store import current_version, rollback, write_back
from riskservice.limits.clock import ManualClock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import REVIEW_QUEUE, device_shard, device_tag
from riskservice.limits.slots import key_slot
from riskservice.policy.load import load_policy
from riskservice.policy.model import Review
from riskservice.review import audit, ban_ends
from riskservice.review.withdrawn import roll_back_scores
from riskservice.state import risk_state
from tests.api.test_events import traffic
from tests.cluster_server import RedisClusterServer
from tests.conftest import ANALYST, ISSUER, make_settings
from tests.redis_server import RedisServer


@pytest.fixture
def app(redis_cluster: RedisClusterServer, redis_cluster_client: redis.RedisCluster, tmp_path: Path,
        clock: ManualClock) -> Iterator[Flask]:
    app = create_app(make_settings(redis_cluster.url, tmp_path, redis_cluster=True), clock=clock)
    yield app
    risk_state(app).store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def share(client: FlaskClient, event: str, device: str = "dev-1", user: str = "user-1",
          **fields: Any) -> dict[str, Any]:
    body = {"event_id": event, "device_id": device, "user_id": user, "coupon_id": "c1", **fields}
    resp = client.post("/v1/decisions", json=body, headers=ISSUER)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def settle(app: Flask) -> None:
    store = risk_state(app).store
    assert isinstance(store, ClusterStore)
    store.flush()


def test_decisions_replays_and_the_device_velocity_window(app: Flask, client: FlaskClient) -> None:
    answers = [share(client, f"e{i}") for i in range(21)]
    assert [a["decision"] for a in answers] == ["allow"] * 20 + ["challenge"]
    assert not any(a["degraded"] for a in answers)
    assert answers[20]["reasons"][0]["code"] == "device_velocity"
    again = share(client, "e3")
    assert again["decision_id"] == answers[3]["decision_id"] and again["decision"] == "allow"


def test_user_ban_ip_ban_and_device_ban_all_block(app: Flask, client: FlaskClient) -> None:
    store = risk_state(app).store
    store.set_ban("user", "user-b", reason="farm", actor="t")
    store.set_ban("ip", "10.0.0.9", reason="proxy", actor="t")
    store.set_ban("device", "dev-b", reason="stolen", actor="t")
    assert [r["code"] for r in share(client, "b1", user="user-b")["reasons"]] == ["user_blocklist"]
    assert [r["code"] for r in share(client, "b2", device="dev-x", ip="10.0.0.9")["reasons"]] == ["ip_blocklist"]
    assert [r["code"] for r in share(client, "b3", device="dev-b", user="u-ok")["reasons"]] == ["device_blocklist"]
    assert share(client, "b4", device="dev-y", user="u-ok2", ip="10.0.0.8")["decision"] == "allow"


def test_outcomes_and_challenges_find_their_decisions(app: Flask, client: FlaskClient) -> None:
    allowed = share(client, "o1")
    resp = client.post("/v1/outcomes", json={"decision_id": allowed["decision_id"], "delivered": 1, "opened": 1,
                                              "claimed": 1}, headers=ISSUER)
    assert resp.status_code == 200 and resp.get_json()["success"] is True
    challenged = share(client, "o2", recipients=[f"r{i}" for i in range(11)])  # fan-out: sms
    assert challenged["challenge"] == "sms"
    resp = client.post(f"/v1/challenges/{challenged['decision_id']}", json={"passed": True, "kind": "sms"},
                       headers=ISSUER)
    assert resp.status_code == 200 and resp.get_json()["counted"] is True
    settle(app)
    lines = list(read_events(risk_state(app).store.client))
    assert [(line["event_id"], line["claimed"], line["challenge_passed"]) for line in lines] == [
        ("o1", 1, None), ("o2", None, True)]
    # The pass counted the share for the user too, on the user's slot.
    assert len(risk_state(app).store.client.get("risk:{u:user-1}:log")) == 12


def test_a_passed_challenge_moves_the_device(app: Flask, client: FlaskClient, clock: ManualClock) -> None:
    # Shanghai, then Beijing 10 minutes later: too fast, challenged. The pass (on the
    # device's slot) moves the device there, so Beijing 5 minutes later is no travel.
    shanghai, beijing = {"lat": 31.2304, "lon": 121.4737}, {"lat": 39.9042, "lon": 116.4074}
    assert share(client, "g1", device="dev-g", geo=shanghai)["decision"] == "allow"
    clock.advance(600)
    flown = share(client, "g2", device="dev-g", geo=beijing)
    assert [r["code"] for r in flown["reasons"]] == ["impossible_travel"]
    resp = client.post(f"/v1/challenges/{flown['decision_id']}", json={"passed": True, "kind": flown["challenge"]},
                       headers=ISSUER)
    assert resp.status_code == 200 and resp.get_json()["counted"] is True
    clock.advance(300)
    assert share(client, "g3", device="dev-g", geo=beijing)["decision"] == "allow"


def test_the_user_daily_cap_holds_across_devices(app: Flask, client: FlaskClient) -> None:
    answers = [share(client, f"u{i}", device=f"dev-{i}", user="user-9") for i in range(52)]
    assert [a["decision"] for a in answers].count("allow") == 50
    reason = answers[-1]["reasons"][0]
    assert (reason["code"], reason["observed"], reason["limit"], reason["window_s"]) == (
        "user_daily_cap", 51, 50, 86400)
    assert 0 < reason["retry_after_s"] <= 86400  # judged from the user's log on its slot (reserve.lua)


def test_review_queue_actions_audit_and_its_verification(app: Flask, client: FlaskClient) -> None:
    for device in ("dev-q1", "dev-q2", "dev-q3"):
        for i in range(3):
            share(client, f"{device}-{i}", device=device, user=f"{device}-u", text="转发得现金")
    page = client.get("/v1/review/devices?limit=2", headers=ANALYST).get_json()
    assert page["total"] == 3 and len(page["devices"]) == 2
    rest = client.get(f"/v1/review/devices?limit=2&cursor={page['next_cursor']}", headers=ANALYST).get_json()
    listed = [d["device_id"] for d in page["devices"] + rest["devices"]]
    assert sorted(listed) == ["dev-q1", "dev-q2", "dev-q3"] and rest["next_cursor"] is None
    resp = client.post("/v1/review/devices/dev-q2/actions", json={"action": "block", "reason": "farm"},
                       headers=ANALYST)
    assert resp.status_code == 200 and resp.get_json()["status"] == "blocked"
    assert share(client, "after-block", device="dev-q2", user="x")["reasons"][0]["code"] == "device_blocklist"
    assert client.get("/v1/review/devices", headers=ANALYST).get_json()["total"] == 2
    blocked = client.get("/v1/review/devices?status=blocked", headers=ANALYST).get_json()
    assert [d["device_id"] for d in blocked["devices"]] == ["dev-q2"]
    dossier = client.get("/v1/review/devices/dev-q2", headers=ANALYST).get_json()
    assert dossier["status"] == "blocked" and dossier["history"][0]["action"] == "block"
    verified = client.get("/v1/audit/verify", headers=ANALYST).get_json()
    assert verified["ok"] is True and verified["checked"] == 1


def test_an_ended_timed_ban_leaves_the_blocked_shard_and_is_queued_again(app: Flask, client: FlaskClient,
                                                                         clock: ManualClock) -> None:
    # QA D4 on Redis Cluster: the lists and the index of ban ends are sharded per slot
    for device in ("dev-t1", "dev-t2"):
        for i in range(3):
            share(client, f"{device}-{i}", device=device, user=f"{device}-u", text="转发得现金")  # 6 points
        resp = client.post(f"/v1/review/devices/{device}/actions",
                           json={"action": "block", "reason": "cool off", "hours": 1}, headers=ANALYST)
        assert resp.status_code == 200 and resp.get_json()["status"] == "blocked"
    clock.advance(3601)
    dossier = client.get("/v1/review/devices/dev-t1", headers=ANALYST).get_json()  # settles its own device
    assert (dossier["status"], dossier["in_queue"], dossier["priority"]) == ("open", True, 6)
    opened = client.get("/v1/review/devices", headers=ANALYST).get_json()
    assert sorted((d["device_id"], d["priority"]) for d in opened["devices"]) == [("dev-t1", 6), ("dev-t2", 6)]
    assert client.get("/v1/review/devices?status=blocked", headers=ANALYST).get_json()["devices"] == []


def test_list_reads_sweep_the_slots_for_ended_bans_once_a_second(client: FlaskClient, clock: ManualClock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep reads a shard of every slot: an analyst paging pays it once a second."""
    sweeps: list[int] = []
    real = ban_ends.settle_due
    monkeypatch.setattr(ban_ends, "settle_due", lambda *args: sweeps.append(1) or real(*args))
    clock.advance(2)
    for _ in range(3):
        assert client.get("/v1/review/devices?status=blocked", headers=ANALYST).status_code == 200
    assert len(sweeps) == 1
    clock.advance(1.5)
    client.get("/v1/review/devices", headers=ANALYST)
    assert len(sweeps) == 2


def test_a_pass_during_a_ban_is_not_counted_on_either_slot(app: Flask, client: FlaskClient) -> None:
    challenged = share(client, "h1", device="dev-h", user="user-h", recipients=[f"r{i}" for i in range(11)])
    resp = client.post("/v1/review/devices/dev-h/actions", json={"action": "block", "reason": "farm"},
                       headers=ANALYST)
    assert resp.status_code == 200
    resp = client.post(f"/v1/challenges/{challenged['decision_id']}", json={"passed": True, "kind": "sms"},
                       headers=ISSUER)
    assert resp.status_code == 200
    assert (resp.get_json()["counted"], resp.get_json()["blocked_by"]) == (False, "device_blocklist")
    settle(app)
    cluster = risk_state(app).store.client
    assert cluster.get("risk:{u:user-h}:log") is None and cluster.get("risk:{d:dev-h}:state") is None
    resp = client.post("/v1/outcomes", json={"decision_id": challenged["decision_id"], "delivered": 1,
                                              "opened": 1, "claimed": 1}, headers=ISSUER)
    assert resp.status_code == 409


def test_graph_scores_flip_and_roll_back(app: Flask, client: FlaskClient) -> None:
    cluster = risk_state(app).store.client
    rows = [{"kind": "device", "node": "dev-g", "anomaly": 0.95, "kol": 0.0},
            {"kind": "user", "node": "user-g", "anomaly": 0.1, "kol": 0.7}]
    first = write_back(cluster, rows)
    risk_state(app).graph_versions.invalidate()
    answer = share(client, "g1", device="dev-g", user="user-g")
    assert answer["scores"]["anomaly"] == 0.95 and answer["scores"]["kol"] == 0.7
    assert "graph_anomaly" in [r["code"] for r in answer["reasons"]]
    second = write_back(cluster, [{**rows[0], "anomaly": 0.0}, rows[1]])
    assert current_version(cluster) == second
    assert rollback(cluster) == first and current_version(cluster) == first
    assert key_slot("risk:{d:dev-g}:gs:1") != key_slot("risk:{u:user-g}:gs:1")


def test_every_rule_decides_as_on_one_redis(app: Flask, client: FlaskClient, clock: ManualClock,
                                            redis_server: RedisServer) -> None:
    """Mixed traffic on the cluster, exported (shards merged in recorded
    order) and replayed by the backtest on a single Redis: every decision the
    same, with its reasons."""
    traffic(client, app, clock, n=300)
    settle(app)
    events = list(read_events(risk_state(app).store.client))
    assert len(events) == 300 and {e["decision"] for e in events} == {"allow", "challenge", "block"}
    # Without the real-time signals: the cluster recorded with no consumer running.
    result = run_backtest(events, load_policy("config/policy.yaml"), redis_url=redis_server.url.replace("/0", "/2"),
                          signals=False)
    assert result.decisions == 300
    assert result.changed == 0, result.examples


def test_cli_export_reads_the_cluster(client: FlaskClient, redis_cluster: RedisClusterServer,
                                      tmp_path: Path) -> None:
    for i in range(5):
        share(client, f"cli-{i}", device=f"dev-{i}")
    out = tmp_path / "events.jsonl"
    env = {"REDIS_URL": redis_cluster.url, "RISK_REDIS_CLUSTER": "1"}
    result = CliRunner().invoke(cli, ["export", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["event_id"] for line in out.read_bytes().splitlines()] == [f"cli-{i}" for i in range(5)]
    # A single-Redis configuration at a cluster node is refused, naming the setting.
    refused = CliRunner().invoke(cli, ["export"], env={"REDIS_URL": redis_cluster.url, "RISK_REDIS_CLUSTER": "0"})
    assert refused.exit_code == 1 and "set RISK_REDIS_CLUSTER=1" in refused.output


def test_rewards_on_the_cluster(app: Flask, client: FlaskClient) -> None:
    def reward(amount: int, event: str, device: str = "dev-r") -> dict[str, Any]:
        body = {"event_id": event, "user_id": "user-r", "device_id": device, "amount_cents": amount,
                "reason": "share reward"}
        resp = client.post("/v1/rewards/check", json=body, headers=ISSUER)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]

    assert reward(50_000, "r1")["decision"] == "allow"
    assert [r["code"] for r in reward(1, "r2")["reasons"]] == ["reward_daily_cap"]
    risk_state(app).store.set_ban("device", "dev-banned", reason="farm", actor="t")
    assert "device_blocklist" in [r["code"] for r in reward(1, "r3", device="dev-banned")["reasons"]]
    assert reward(50_000, "r1")["replayed"] is True


def test_an_action_whose_entry_was_written_but_not_applied_is_reported(app: Flask, client: FlaskClient) -> None:
    share(client, "v1", device="dev-v")
    resp = client.post("/v1/review/devices/dev-v/actions", json={"action": "label", "label": "legit",
                                                                 "reason": "known shop"}, headers=ANALYST)
    assert resp.status_code == 200
    assert client.get("/v1/audit/verify", headers=ANALYST).get_json()["ok"] is True
    # The intent of a second action, as if the process died before applying it.
    entry = audit.append(risk_state(app).store.client, now_ms=int(time.time() * 1000), actor="a", action="block",
                         entity="device:dev-v", reason="farm")
    report = client.get("/v1/audit/verify", headers=ANALYST).get_json()
    assert report["ok"] is False
    assert (report["broken"]["problem"], report["broken"]["seq"]) == ("unapplied", entry["seq"])
    # Repeating the action applies it: the trail verifies again.
    client.post("/v1/review/devices/dev-v/actions", json={"action": "block", "reason": "farm"}, headers=ANALYST)
    assert client.get("/v1/audit/verify", headers=ANALYST).get_json()["ok"] is True


def test_start_up_refuses_a_redis_of_the_other_kind(redis_cluster: RedisClusterServer, redis_server: RedisServer,
                                                   tmp_path: Path) -> None:
    with pytest.raises(UnsupportedRedis, match="is a single Redis"):
        check_deployment(make_settings(redis_server.url, tmp_path, redis_cluster=True))
    with pytest.raises(UnsupportedRedis, match="set RISK_REDIS_CLUSTER=1"):
        check_deployment(make_settings(redis_cluster.url, tmp_path))
    check_deployment(make_settings(redis_cluster.url, tmp_path, redis_cluster=True))
    check_deployment(make_settings(redis_server.url, tmp_path))


def test_a_rollback_takes_the_withdrawn_runs_marks_back_from_the_queue_shards(app: Flask) -> None:
    cluster = risk_state(app).store.client
    devices = [f"dev-w{i}" for i in range(6)]  # (spread over the masters' queue shards)
    first = write_back(cluster, [{"kind": "device", "node": d, "anomaly": 0.1, "kol": 0.0} for d in devices],
                       queue_threshold=0.8)
    second = write_back(cluster, [{"kind": "device", "node": d, "anomaly": 0.9, "kol": 0.0} for d in devices],
                        queue_threshold=0.8)
    shards = {device_shard(REVIEW_QUEUE, d) for d in devices}
    assert sum(cluster.zcard(s) for s in shards) >= len(devices)
    assert roll_back_scores(cluster, Review(anomaly_threshold=0.8)) == (first, second)
    assert not any(cluster.zscore(device_shard(REVIEW_QUEUE, d), d) for d in devices)
    assert not any(cluster.hget(f"{device_tag(d)}:flags", "_anomaly") for d in devices)
