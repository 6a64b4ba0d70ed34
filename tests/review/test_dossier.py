"""GET /v1/review/devices/<device_id>: counters, decisions, users, scores, labels, history."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import Dossier
from riskservice.graph_store import write_back
from riskservice.limits.clock import ManualClock
from tests.api.helpers import share
from tests.conftest import ANALYST
from tests.review.helpers import ANALYST_ID, act, flag


def dossier(client: FlaskClient, device: str) -> dict:  # type: ignore[type-arg]
    resp = client.get(f"/v1/review/devices/{device}", headers=ANALYST)
    assert resp.status_code == 200, resp.json
    Dossier.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def test_unknown_device_is_404(client: FlaskClient) -> None:
    resp = client.get("/v1/review/devices/nobody", headers=ANALYST)
    assert resp.status_code == 404 and resp.json["error"]["fields"] == {"device_id": "unknown device"}
    assert client.get("/v1/review/devices/nobody/graph", headers=ANALYST).status_code == 404


def test_counters_against_the_policy_limits(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(3):
        share(client, device_id="dev-c", user_id=f"u{i}")
    clock.advance(400)  # past the 5 min velocity window, inside the day
    share(client, device_id="dev-c", user_id="u0")
    counters = dossier(client, "dev-c")["counters"]
    assert counters["device_velocity"] == {"count": 1, "limit": 20, "window_s": 300, "remaining": 19,
                                           "resets_in_s": 300}
    assert counters["device_daily_cap"]["count"] == 4 and counters["device_daily_cap"]["limit"] == 50
    assert counters["device_many_users"]["count"] == 3 and counters["device_many_users"]["limit"] == 5
    assert counters["low_success_rate"]["samples"] == 0


def test_recent_decisions_with_reasons_and_outcomes(client: FlaskClient, clock: ManualClock) -> None:
    ok = share(client, device_id="dev-d", user_id="alice", recipients=["b", "c"]).json
    client.post("/v1/outcomes", json={"decision_id": ok["decision_id"], "delivered": 2, "opened": 1, "claimed": 1},
                headers={"Authorization": "Bearer test-issuer-key-0123456789"})
    clock.advance(1)
    share(client, device_id="dev-d", user_id="bob", text="转发抽奖")
    share(client, device_id="other", user_id="carol")
    d = dossier(client, "dev-d")
    assert [(x["decision"], x["reasons"], x["user_id"]) for x in d["decisions"]] == [
        ("block", ["sensitive_copy"], "bob"), ("allow", [], "alice")]
    assert d["decisions"][1]["outcome"] == {"delivered": 2, "opened": 1, "claimed": 1}
    assert d["decisions"][1]["decision_id"] == ok["decision_id"]
    assert d["decisions"][1]["recipients"] == 2 and d["decisions_complete"] is True
    users = {u["user_id"]: u for u in d["users"]}
    assert set(users) == {"alice", "bob"}
    assert users["alice"]["user_daily_cap"]["count"] == 1 and users["alice"]["last_share"] is not None
    assert users["bob"]["last_share"] is None and users["bob"]["attempts"] == 1  # refused: never admitted
    assert d["flags"]["reasons"] == {"sensitive_copy": 1} and d["flags"]["points"] == 2


def test_scores_with_signals_labels_and_history(client: FlaskClient, redis_client: redis.Redis) -> None:
    flag(client, "dev-s", user="mallory")
    signal = {"name": "accounts_per_device", "family": "farm", "value": 9, "score": 0.9, "detail": "9 accounts"}
    write_back(redis_client, [
        {"node": "dev-s", "kind": "device", "kol": 0.1, "anomaly": 0.9, "signals": [signal]},
        {"node": "mallory", "kind": "user", "kol": 0.3, "anomaly": 0.7, "signals": []},
    ])
    act(client, "dev-s", "label", label="fraud", reason="farm")
    act(client, "dev-s", "block", reason="farm confirmed")
    d = dossier(client, "dev-s")
    assert d["scores"]["device"]["anomaly"] == 0.9 and d["scores"]["device"]["signals"] == [signal]
    assert d["scores"]["users"] == {"mallory": {"kol": 0.3, "anomaly": 0.7}}
    assert d["status"] == "blocked" and d["review"]["label"] == "fraud" and d["review"]["label_by"] == ANALYST_ID
    assert d["ban"]["reason"] == "farm confirmed" and d["in_queue"] is False
    assert [(e["action"], e["reason"]) for e in d["history"]] == [("block", "farm confirmed"), ("label", "farm")]


def test_a_device_known_only_from_graph_scores_has_a_dossier(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [{"node": "scored", "kind": "device", "kol": 0.0, "anomaly": 0.2, "signals": []}])
    d = dossier(client, "scored")
    assert d["decisions"] == [] and d["users"] == [] and d["status"] == "open"
