"""Reward checks: the sliding sum cap, bans, anomaly, KOL bonus, idempotency."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import redis
from flask import Flask
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from riskservice.limits.clock import ManualClock
from tests.conftest import ANALYST, ISSUER

_ids = itertools.count()


def reward(client: FlaskClient, amount: int, user: str = "u1", device: str = "d1", **extra: object) -> dict:
    body = {"event_id": f"rw-{next(_ids)}", "user_id": user, "device_id": device, "amount_cents": amount,
            "reason": "share reward", **extra}
    resp = client.post("/v1/rewards/check", json=body, headers=ISSUER)
    assert resp.status_code == 200, resp.json
    return resp.json  # type: ignore[no-any-return]


def test_cap_of_500_yuan_a_day_at_and_past_the_limit(client: FlaskClient, clock: ManualClock) -> None:
    assert reward(client, 30_000)["decision"] == "allow"
    clock.advance(3600)
    assert reward(client, 20_000)["decision"] == "allow"  # exactly 500 yuan
    over = reward(client, 1)
    assert over["decision"] == "block"
    (reason,) = over["reasons"]
    assert (reason["code"], reason["observed"], reason["limit"]) == ("reward_daily_cap", 50_001, 50_000)
    # The first 300 yuan leave the window 24 h after they were paid, 23 h from now.
    assert reason["retry_after_s"] == 23 * 3600
    clock.advance(23 * 3600)
    assert reward(client, 30_000)["decision"] == "allow"


def test_refused_rewards_are_not_counted(client: FlaskClient) -> None:
    assert reward(client, 60_000)["decision"] == "block"
    assert reward(client, 50_000)["decision"] == "allow"


def test_replays_are_idempotent(client: FlaskClient) -> None:
    body = {"event_id": "same-reward", "user_id": "u9", "device_id": "d9", "amount_cents": 40_000, "reason": "x"}
    first = client.post("/v1/rewards/check", json=body, headers=ISSUER).json
    again = client.post("/v1/rewards/check", json=body, headers=ISSUER).json
    assert again["reward_id"] == first["reward_id"] and again["replayed"] is True
    assert reward(client, 10_000, user="u9")["decision"] == "allow"  # 400 + 100: counted once
    conflict = client.post("/v1/rewards/check", json={**body, "amount_cents": 1}, headers=ISSUER)
    assert conflict.status_code == 409


def test_concurrent_checks_never_exceed_the_cap(app: Flask) -> None:
    def check(i: int) -> str:
        body = {"event_id": f"c-{i}", "user_id": "racer", "device_id": "d", "amount_cents": 3_000, "reason": "r"}
        return app.test_client().post("/v1/rewards/check", json=body, headers=ISSUER).json["decision"]

    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(check, range(40)))
    assert decisions.count("allow") == 16  # 16 x 30 yuan = 480; a 17th would be 510


def test_banned_devices_and_users_get_nothing(client: FlaskClient, app: Flask) -> None:
    store = app.extensions["risk"].store
    store.set_ban("device", "farm", reason="device farm", actor="a1")
    store.set_ban("user", "cheat", reason="fraud", actor="a1")
    assert [r["code"] for r in reward(client, 100, device="farm")["reasons"]] == ["device_blocklist"]
    assert [r["code"] for r in reward(client, 100, user="cheat", device="ok")["reasons"]] == ["user_blocklist"]


def test_anomalous_users_are_challenged_and_kols_get_their_bonus(client: FlaskClient, app: Flask,
                                                                 redis_client: redis.Redis) -> None:
    rows = [{"node": "kol", "kind": "user", "kol": 0.9, "anomaly": 0.1, "signals": []},
            {"node": "small", "kind": "user", "kol": 0.2, "anomaly": 0.0, "signals": []},
            {"node": "sybil", "kind": "user", "kol": 0.0, "anomaly": 0.85, "signals": []}]
    write_back(redis_client, rows, reach={"kol": 501, "small": 500, "sybil": 3})
    app.extensions["risk"].graph_versions.invalidate()
    big = reward(client, 10_000, user="kol")
    assert (big["decision"], big["kol_tier"], big["bonus_cents"], big["reach"]) == ("allow", "kol", 500, 501)
    small = reward(client, 10_000, user="small")
    assert (small["kol_tier"], small["bonus_cents"]) == (None, 0)
    sybil = reward(client, 10_000, user="sybil")
    assert (sybil["decision"], sybil["challenge"]) == ("challenge", "captcha")
    assert sybil["reasons"][0]["code"] == "reward_graph_anomaly"


def test_the_bonus_counts_toward_the_cap(client: FlaskClient, app: Flask, redis_client: redis.Redis) -> None:
    write_back(redis_client, [{"node": "kol", "kind": "user", "kol": 0.9, "anomaly": 0.0, "signals": []}],
               reach={"kol": 900})
    app.extensions["risk"].graph_versions.invalidate()
    assert reward(client, 47_619, user="kol")["bonus_cents"] == 2_380  # 49 999 paid
    assert reward(client, 1, user="kol")["decision"] == "allow"  # 50 000
    assert reward(client, 1, user="kol")["decision"] == "block"


def test_bad_reward_requests(client: FlaskClient) -> None:
    for body, field in [({"user_id": "u", "device_id": "d", "amount_cents": 1, "reason": "r"}, "event_id"),
                        ({"event_id": "e", "user_id": "u", "device_id": "d", "amount_cents": 0, "reason": "r"},
                         "amount_cents"),
                        ({"event_id": "e", "user_id": "u", "device_id": "d", "amount_cents": 1}, "reason")]:
        resp = client.post("/v1/rewards/check", json=body, headers=ISSUER)
        assert resp.status_code == 422 and field in resp.json["error"]["fields"]
    assert client.post("/v1/rewards/check", json={}, headers=ANALYST).status_code == 403
