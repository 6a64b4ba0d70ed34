"""GET /v1/review/devices/<device_id>/graph: hops, live users, the cap."""

from __future__ import annotations

from typing import Any

import redis
from flask.testing import FlaskClient

from riskservice.api.schemas import Neighbourhood
from riskservice.graph_store import write_back
from tests.api.helpers import share
from tests.conftest import ANALYST

ROWS = [{"node": n, "kind": k, "kol": kol, "anomaly": a, "signals": []}
        for n, k, kol, a in (("dev", "device", 0.0, 0.9), ("u1", "user", 0.8, 0.1), ("u2", "user", 0.0, 0.5),
                             ("x", "user", 0.0, 0.0), ("y", "user", 0.0, 0.0), ("dev2", "device", 0.0, 0.0))]
ADJ = [
    ("device", "dev", {"users": [["u1", 5.0], ["u2", 2.0]]}),
    ("user", "u1", {"out": [["x", 3.0], ["u2", 1.0]], "devices": [["dev", 5.0]]}),
    ("user", "u2", {"in": [["u1", 1.0]], "devices": [["dev", 2.0], ["dev2", 1.0]]}),
    ("user", "x", {"in": [["u1", 3.0]], "out": [["y", 1.0]]}),
    ("user", "y", {"in": [["x", 1.0]]}),
    ("device", "dev2", {"users": [["u2", 1.0]]}),
]


def graph(client: FlaskClient, device: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"/v1/review/devices/{device}/graph", query_string=params, headers=ANALYST)
    assert resp.status_code == 200, resp.json
    Neighbourhood.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def nodes(body: dict[str, Any]) -> set[str]:
    return {f"{n['kind']}:{n['id']}" for n in body["nodes"]}


def edges(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["kind"]) for e in body["edges"]}


def test_hops_expand_through_users_to_contacts_and_devices(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, ROWS, ADJ)
    one = graph(client, "dev", hops=1)
    assert nodes(one) == {"device:dev", "user:u1", "user:u2"}
    # Induced: the share between two hop-1 users is there too.
    assert edges(one) == {("dev", "u1", "device"), ("dev", "u2", "device"), ("u1", "u2", "share")}
    assert one["truncated"] is False and one["hops"] == 1
    two = graph(client, "dev", hops=2)
    assert nodes(two) == nodes(one) | {"user:x", "device:dev2"}
    assert ("dev2", "u2", "device") in edges(two) and ("u1", "x", "share") in edges(two)
    three = graph(client, "dev", hops=3)
    assert "user:y" in nodes(three)
    by_id = {n["id"]: n for n in three["nodes"]}
    assert by_id["dev"]["hop"] == 0 and by_id["u1"]["kol"] == 0.8 and by_id["y"]["hop"] == 3
    assert by_id["y"]["parent"] == {"kind": "user", "id": "x"}


def test_live_users_join_before_any_batch_scores(client: FlaskClient) -> None:
    share(client, device_id="new-dev", user_id="fresh")
    body = graph(client, "new-dev")
    assert nodes(body) == {"device:new-dev", "user:fresh"}
    fresh = next(n for n in body["nodes"] if n["id"] == "fresh")
    assert fresh["live"] is True and fresh["anomaly"] is None and body["version"] is None


def test_the_cap_truncates_heaviest_links_first(client: FlaskClient, redis_client: redis.Redis) -> None:
    hub_users = [[f"u{i:03}", float(400 - i)] for i in range(400)]
    adj = [("device", "hub", {"users": hub_users[:50]})]
    adj += [("user", f"u{i:03}", {"out": [[f"r{i}-{j}", 1.0] for j in range(50)]}) for i in range(50)]
    write_back(redis_client, [{"node": "hub", "kind": "device", "kol": 0, "anomaly": 0, "signals": []}], adj)
    body = graph(client, "hub", hops=3)
    assert body["truncated"] is True and len(body["nodes"]) == body["max_nodes"] == 150
    # Every hop-1 user (heaviest links) made it in before any of their contacts.
    assert {f"user:u{i:03}" for i in range(50)} <= nodes(body)
    assert graph(client, "hub", hops=1)["truncated"] is False


def test_hops_must_be_1_to_3(client: FlaskClient) -> None:
    share(client, device_id="d")
    for hops in ("0", "4", "two"):
        resp = client.get("/v1/review/devices/d/graph", query_string={"hops": hops}, headers=ANALYST)
        assert resp.status_code == 400 and "hops" in resp.json["error"]["fields"]
