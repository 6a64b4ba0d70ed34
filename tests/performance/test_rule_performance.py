"""GET /v1/rules/performance: hits, refusals and precision from real decisions and analysts' labels."""

from __future__ import annotations

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from riskservice.review.performance import CODES, rule_performance, wilson
from tests.conftest import ANALYST, ISSUER
from tests.performance.helpers import label_device, label_user, traffic


def rule(body: dict[str, object], code: str) -> dict[str, object]:
    rules = body["rules"]
    assert isinstance(rules, list)
    return next(r for r in rules if r["code"] == code)


def test_hits_refusals_and_precision_per_rule(client: FlaskClient, redis_client: redis.Redis) -> None:
    traffic(client)
    label_device(client, "dev-f1", "fraud")
    label_device(client, "dev-l1", "legit")
    label_user(redis_client, "uu", "fraud")  # dev-u itself is unlabelled: its user's label counts
    label_user(redis_client, "uf1", "legit")  # the device's label wins over its user's

    resp = client.get("/v1/rules/performance", headers=ANALYST)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["decisions"] == 11 and body["truncated"] is False
    assert body["labelled"] == {"devices": 2, "users": 2}
    assert [r["code"] for r in body["rules"]] == list(CODES)

    copy = rule(body, "sensitive_copy")
    assert copy["mode"] == "enforced" and copy["rollout"] == 100
    assert copy["hits"] == {"enforced": 7, "shadow": 0}
    assert copy["refusals"] == {"total": 7, "block": 7, "challenge": 0}
    # 5 of 6 hits, backed by 3 labels: the interval is that of 5/6 over a sample of 3.
    assert copy["precision"]["enforced"] == {  # type: ignore[index]
        "labelled": 6, "fraud": 5, "legit": 1, "precision": 0.8333, "labels": 3, "fraud_labels": 2,
        "interval": [0.31, 0.9823]}
    assert copy["precision"]["shadow"]["labelled"] == 0  # type: ignore[index]
    assert sum(copy["series"]["enforced"]) == 7  # type: ignore[index]

    fan = rule(body, "fan_out")
    assert fan["mode"] == "shadow"
    assert fan["hits"] == {"enforced": 0, "shadow": 2}
    assert fan["refusals"] == {"total": 0, "block": 0, "challenge": 0}
    assert fan["precision"]["shadow"] == {  # type: ignore[index]
        "labelled": 2, "fraud": 1, "legit": 1, "precision": 0.5, "labels": 2, "fraud_labels": 1,
        "interval": [0.0945, 0.9055]}

    quiet = rule(body, "device_velocity")
    assert quiet["hits"] == {"enforced": 0, "shadow": 0} and quiet["precision"]["enforced"]["precision"] is None  # type: ignore[index]


def entry(r: redis.Redis, ms: int, seq: int, rc: str, dec: int, device: str, user: str = "u") -> None:
    """One decision in the stream at an exact entry time, in the decision scripts' format."""
    r.xadd("risk:events", {"k": "decision", "id": f"d{ms}-{seq}", "t": str(ms), "dec": str(dec), "rc": rc,
                           "req": orjson.dumps({"device_id": device, "user_id": user})}, id=f"{ms}-{seq}")


def test_window_buckets_and_unknown_codes(redis_client: redis.Redis) -> None:
    hour = 3_600_000
    t0 = 1_800_000_000_000
    entry(redis_client, t0 - 1, 0, "fan_out", 1, "a")  # before the window
    entry(redis_client, t0, 0, "fan_out,sensitive_copy", 2, "a")
    redis_client.xadd("risk:events", {"k": "outcome", "id": "x", "t": "1", "dl": "1", "op": "1", "cl": "1"},
                      id=f"{t0 + 5}-0")
    entry(redis_client, t0 + hour, 0, "fan_out:shadow,lockstep_burst", 0, "b")
    entry(redis_client, t0 + 2 * hour - 1, 0, "", 0, "b")
    entry(redis_client, t0 + 2 * hour, 0, "fan_out", 1, "a")  # at until: outside
    body = rule_performance(redis_client, since_ms=t0, until_ms=t0 + 2 * hour)
    assert (body["decisions"], body["scanned"], body["bucket_ms"], body["buckets"]) == (3, 4, hour, [t0, t0 + hour])
    fan = next(r for r in body["rules"] if r["code"] == "fan_out")
    assert fan["hits"] == {"enforced": 1, "shadow": 1}
    assert fan["refusals"] == {"total": 1, "block": 1, "challenge": 0}
    assert fan["series"] == {"enforced": [1, 0], "shadow": [0, 1]}
    assert fan["mode"] == "unknown"  # no policy given
    # A code no catalogue knows (a newer signal) is reported after the known ones.
    assert body["rules"][-1]["code"] == "lockstep_burst" and body["rules"][-1]["hits"]["shadow"] == 0
    assert body["rules"][-1]["hits"]["enforced"] == 1

    capped = rule_performance(redis_client, since_ms=t0, until_ms=t0 + 2 * hour, max_events=2)
    assert (capped["truncated"], capped["scanned"], capped["scanned_until"]) == (True, 2, t0 + 6)
    # 30 days: buckets of 15 h, at most 48 of them.
    month = rule_performance(redis_client, since_ms=t0, until_ms=t0 + 30 * 24 * hour)
    assert month["bucket_ms"] == 15 * hour and len(month["buckets"]) == 48


def test_since_and_until_in_the_query(client: FlaskClient, redis_client: redis.Redis) -> None:
    entry(redis_client, 1_800_000_000_000, 0, "fan_out", 1, "a")
    iso = client.get("/v1/rules/performance?since=2027-01-15T08:00:00Z&until=2027-01-15T09:00:00Z",
                     headers=ANALYST)
    assert iso.status_code == 200
    assert (iso.json["since"], iso.json["until"]) == (1_800_000_000_000, 1_800_003_600_000)
    assert iso.json["decisions"] == 1
    # until alone: the 24 h before it; since alone in the future: an empty window up to it.
    ms = client.get("/v1/rules/performance?until=1800000000001", headers=ANALYST).json
    assert (ms["decisions"], ms["since"]) == (1, 1_800_000_000_001 - 86_400_000)
    later = client.get("/v1/rules/performance?since=1800000000001", headers=ANALYST).json
    assert (later["decisions"], later["until"]) == (0, 1_800_000_000_001)


@pytest.mark.parametrize(("query", "field"), [
    ("since=yesterday", "since"), ("until=2026-01-01T00:00:00", "until"), ("since=5&until=4", "until"),
    ("since=1&since=2", "since"), ("top=5", "top"), ("until=", "until"),
])
def test_bad_parameters_are_400_naming_them(client: FlaskClient, query: str, field: str) -> None:
    resp = client.get(f"/v1/rules/performance?{query}", headers=ANALYST)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_parameter" and field in resp.json["error"]["fields"]


def test_needs_an_analyst_key(client: FlaskClient) -> None:
    assert client.get("/v1/rules/performance").status_code == 401
    assert client.get("/v1/rules/performance", headers=ISSUER).status_code == 403


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    assert wilson(3, 3) == (0.4385, 1.0)
    assert wilson(3000, 3000) == (0.9987, 1.0)
    assert wilson(5, 10) == (0.2366, 0.7634)


def test_many_hits_of_few_labels_keep_a_wide_interval(redis_client: redis.Redis) -> None:
    """1 000 hits of one fraud device and 1 of a legit one: precision 0.999, but over 2 labels."""
    t0 = 1_800_000_000_000
    for i in range(1000):
        entry(redis_client, t0 + i, 0, "fan_out", 1, "farm")
    entry(redis_client, t0 + 1000, 0, "fan_out", 1, "shop")
    label_user(redis_client, "u", "fraud")  # every share's user: the devices' labels win
    redis_client.hset("risk:{d:farm}:review", mapping={"label": "fraud"})
    redis_client.hset("risk:{d:shop}:review", mapping={"label": "legit"})
    body = rule_performance(redis_client, since_ms=t0, until_ms=t0 + 2000)
    fan = next(r for r in body["rules"] if r["code"] == "fan_out")
    assert fan["precision"]["enforced"] == {"labelled": 1001, "fraud": 1000, "legit": 1, "precision": 0.999,
                                            "labels": 2, "fraud_labels": 1, "interval": [0.3417, 1.0]}
