"""The share-event record: export, and backtests that replay it."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from riskservice.__main__ import cli
from riskservice.backtest import run_backtest
from riskservice.events import read_events
from riskservice.limits.clock import ManualClock
from riskservice.policy.load import load_policy, parse_policy
from tests.api.helpers import share
from tests.conftest import ISSUER
from tests.redis_server import RedisServer

DEFAULT = Path("config/policy.yaml").read_text()


def traffic(client: FlaskClient, app: Flask, clock: ManualClock, n: int = 600, seed: int = 3) -> None:
    """Mixed traffic: bursts, device farms, low-claim sharers, challenges, bans, geo, bad copy."""
    rng = random.Random(seed)
    app.extensions["risk"].store.set_ban("device", "banned-dev", reason="farm", actor="analyst")
    challenged: list[tuple[str, str]] = []
    for i in range(n):
        clock.advance(rng.choice([0.2, 1, 5, 30, 120]))
        device = rng.choice(["burst-1", "burst-2", "farm", "quiet", "banned-dev", f"dev-{i % 13}"])
        user = f"farm-u{i % 9}" if device == "farm" else rng.choice(["u1", "u2", "u3", f"u{i % 17}"])
        fields: dict[str, object] = {"device_id": device, "user_id": user, "merchant_id": rng.choice(["m1", "m2"])}
        if rng.random() < 0.3:
            fields["geo"] = {"lat": 31.2 + rng.random(), "lon": 121.4 + rng.random() * 20}
        if rng.random() < 0.1:
            fields["recipients"] = [f"r{j}" for j in range(rng.choice([3, 12]))]
        if rng.random() < 0.03:
            fields["text"] = "转发抽奖"
        resp = share(client, **fields).json
        if resp["decision"] == "allow" and rng.random() < 0.7:
            claimed = 1 if (device != "quiet" and rng.random() < 0.5) else 0
            client.post("/v1/outcomes", json={"decision_id": resp["decision_id"], "delivered": 1, "opened": 1,
                                              "claimed": claimed}, headers=ISSUER)
        if resp["decision"] == "challenge":
            challenged.append((resp["decision_id"], resp["challenge"]))
        if challenged and rng.random() < 0.2:
            did, kind = challenged.pop(0)
            client.post(f"/v1/challenges/{did}", json={"passed": rng.random() < 0.5, "kind": kind}, headers=ISSUER)


def test_export_has_every_decision_with_its_outcome(client: FlaskClient, app: Flask, clock: ManualClock,
                                                    redis_client: redis.Redis) -> None:
    one_id = share(client, event_id="one", recipients=["a", "b"], merchant_id="m9").json["decision_id"]
    did = share(client, event_id="two", device_id="device-two").json["decision_id"]
    client.post("/v1/outcomes", json={"decision_id": did, "delivered": 1, "opened": 1, "claimed": 0}, headers=ISSUER)
    client.post("/v1/outcomes", json={"decision_id": did, "delivered": 1, "opened": 1, "claimed": 1}, headers=ISSUER)
    share(client, event_id="two", device_id="device-two")  # a replay is not a new event
    lines = list(read_events(redis_client))
    assert [e["event_id"] for e in lines] == ["one", "two"]
    one, two = lines
    assert one["recipients"] == ["a", "b"] and one["merchant_id"] == "m9" and one["decision"] == "allow"
    assert one["ts"] == pytest.approx(clock.now_ms() / 1000)
    assert one["delivered"] is None
    assert (two["delivered"], two["opened"], two["claimed"]) == (1, 1, 1)
    assert [h[3] for h in two["outcome_history"]] == [0, 1]
    # An id longer than 39 characters is carried by its events as its first 32 (its device id is in the
    # request); the export gives the whole id.
    assert (one["decision_id"], two["decision_id"]) == (one_id, did) and len(one_id) == 39 < len(did)
    assert [f[b"id"].decode() for _, f in redis_client.xrange("risk:events")] == [one_id, did[:32], did[:32], did[:32]]


def test_export_filters_by_time(client: FlaskClient, clock: ManualClock, redis_client: redis.Redis) -> None:
    share(client, event_id="early")
    clock.advance(3600)
    middle = clock.now_ms()
    share(client, event_id="late")
    assert [e["event_id"] for e in read_events(redis_client, since_ms=middle)] == ["late"]
    assert [e["event_id"] for e in read_events(redis_client, until_ms=middle)] == ["early"]


def test_events_older_than_retention_are_trimmed(client: FlaskClient, redis_client: redis.Redis) -> None:
    # A full stream node (100 entries) of events from long ago: trimming is
    # by whole nodes ("MINID ~", cheap), so the whole node goes at once.
    # About one append in 20 trims (by the first character of its random
    # decision id), so within 300 shares one has trimmed (all but surely:
    # 1 - (61/64)**300).
    for i in range(1, 101):
        redis_client.xadd("risk:events", {"k": "decision"}, id=f"{i}-0")
    for n in range(1, 301):
        share(client)
        if redis_client.xlen("risk:events") == n:
            break
    assert redis_client.xlen("risk:events") == n < 300
    assert int(redis_client.xrange("risk:events", count=1)[0][0].split(b"-")[0]) > 100


def test_cli_export_writes_json_lines(client: FlaskClient, redis_server: RedisServer, tmp_path: Path) -> None:
    share(client, event_id="cli-1")
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(cli, ["export", "-o", str(out)], env={"REDIS_URL": redis_server.url})
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["event_id"] for e in lines] == ["cli-1"]


def test_backtest_with_the_same_policy_reproduces_every_decision(
        client: FlaskClient, app: Flask, clock: ManualClock, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    traffic(client, app, clock)
    events = list(read_events(redis_client))
    decisions = {e["decision"] for e in events}
    assert decisions == {"allow", "challenge", "block"}, "the traffic must exercise every outcome"
    assert any(e["challenge_passed"] is not None for e in events)
    assert any("low_success_rate" in e["reasons"] or "device_many_users" in e["reasons"] for e in events)
    scratch = redis_server.url.replace("/0", "/1")
    # The traffic was recorded without a signal consumer running, so it is
    # replayed without one (tests/signals covers the replay of signals).
    result = run_backtest(events, load_policy("config/policy.yaml"), redis_url=scratch, signals=False)
    assert result.decisions == len(events)
    assert result.changed == 0, result.examples
    assert not result.rule_added and not result.rule_removed


def test_backtest_replays_a_pass_that_a_ban_held_as_held(
        client: FlaskClient, app: Flask, clock: ManualClock, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    """A pass reported while an analyst's ban was in force did not move the
    device; replayed with the same policy, it must not either (QA13 D4)."""
    store = app.extensions["risk"].store
    shanghai, beijing = {"lat": 31.23, "lon": 121.47}, {"lat": 39.90, "lon": 116.40}
    assert share(client, event_id="p1-1", device_id="held-dev", geo=shanghai).json["decision"] == "allow"
    clock.advance(600)
    far = share(client, event_id="p1-2", device_id="held-dev", geo=beijing).json
    assert far["decision"] == "challenge"
    store.set_ban("device", "held-dev", reason="abuse", actor="analyst-1")
    passed = client.post(f"/v1/challenges/{far['decision_id']}", json={"passed": True, "kind": far["challenge"]},
                         headers=ISSUER).json
    assert (passed["counted"], passed["blocked_by"]) == (False, "device_blocklist")
    store.clear_ban("device", "held-dev")
    clock.advance(300)
    again = share(client, event_id="p1-3", device_id="held-dev", geo=beijing).json
    assert again["decision"] == "challenge"  # (the held pass did not move the device)
    events = list(read_events(redis_client))
    result = run_backtest(events, load_policy("config/policy.yaml"), redis_url=redis_server.url.replace("/0", "/1"),
                          signals=False)
    assert result.changed == 0, result.examples


def test_backtest_reports_what_a_stricter_rule_would_change(
        client: FlaskClient, app: Flask, clock: ManualClock, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    traffic(client, app, clock, n=300)
    events = list(read_events(redis_client))
    candidate = parse_policy(DEFAULT.replace("limit: 20, window_s: 300", "limit: 5, window_s: 300"))
    result = run_backtest(events, candidate, redis_url=redis_server.url.replace("/0", "/1"))
    assert result.changed > 0
    assert result.rule_added["device_velocity"] > 0
    assert result.transitions[("allow", "challenge")] > 0
    assert result.examples and result.examples[0]["candidate_reasons"]
    assert sum(result.by_merchant.values()) == result.changed


def test_backtest_cli_runs_on_its_own_scratch_redis(client: FlaskClient, app: Flask, clock: ManualClock,
                                                    redis_client: redis.Redis, tmp_path: Path) -> None:
    traffic(client, app, clock, n=80)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in read_events(redis_client)))
    # (recorded without a signal consumer, so replayed without one)
    result = CliRunner().invoke(cli, ["backtest", "--policy", "config/policy.yaml", "--input", str(events),
                                      "--json", "--no-signals"], env={"RISK_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["decisions"] == 80 and summary["changed"] == 0


def test_export_carries_the_analysts_label_of_the_device(client: FlaskClient, redis_client: redis.Redis) -> None:
    share(client, event_id="l1", device_id="farm")
    share(client, event_id="l2", device_id="clean")
    redis_client.hset("risk:{d:farm}:review", mapping={"status": "labelled", "label": "fraud"})
    labels = {e["event_id"]: e["label"] for e in read_events(redis_client)}
    assert labels == {"l1": "fraud", "l2": None}


def test_no_trim_before_the_clock_has_run_a_retention(app: Flask, clock: ManualClock,
                                                      redis_client: redis.Redis) -> None:
    """A clock younger than the retention has nothing to trim (a negative MINID is refused)."""
    clock.set(60_000)
    client = app.test_client()
    answers = [share(client).json for _ in range(120)]  # about six of them trim
    assert all(not a["degraded"] for a in answers)
    assert redis_client.xlen("risk:events") == 120
