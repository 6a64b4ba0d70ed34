"""The case API over real Redis: list, page, bulk actions, and what the decision path sees next."""

from __future__ import annotations

from typing import Any

import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from riskservice.graph_store import write_back
from tests.api.helpers import codes, share
from tests.cases.helpers import case
from tests.conftest import ANALYST, ISSUER
from tests.review.helpers import ANALYST_ID

FARM = case(["acct-1", "acct-2", "acct-3"], ["phone-1"], score=6.5, summary="3 accounts on 1 device")
PAIR = case(["p1", "p2"], score=2.0, kind="linked", summary="2 linked accounts")


def act(client: FlaskClient, case_id: str, **body: Any) -> TestResponse:
    return client.post(f"/v1/review/cases/{case_id}/actions", json=body, headers=ANALYST)


def loaded(client: FlaskClient, case_id: str) -> list[dict[str, str]]:
    body = client.get(f"/v1/review/cases/{case_id}", headers=ANALYST).json
    return [{"node": m["node"], "kind": m["kind"]} for m in body["members"]]  # type: ignore[index]


def test_list_and_page(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[FARM, PAIR])
    resp = client.get("/v1/review/cases", query_string={"status": "open", "limit": 1}, headers=ANALYST)
    assert resp.status_code == 200
    first = resp.json
    assert [c["case_id"] for c in first["cases"]] == ["c1"] and first["next_cursor"]
    c = first["cases"][0]
    assert (c["kind"], c["score"], c["summary"], c["status"]) == ("farm", 6.5, "3 accounts on 1 device", "open")
    assert c["members"][0] == {"node": "phone-1", "kind": "device", "anomaly": 0.9, "kol": 0.1}
    nxt = client.get("/v1/review/cases", query_string={"limit": 1, "cursor": first["next_cursor"]},
                     headers=ANALYST).json
    assert [c["case_id"] for c in nxt["cases"]] == ["c2"] and nxt["next_cursor"] is None
    page = client.get("/v1/review/cases/c1", headers=ANALYST).json
    assert page["evidence"]["total"] == 3 and page["evidence"]["edges"][0]["source"] == "phone-1"
    assert page["subgraph"]["truncated"] is False and len(page["subgraph"]["nodes"]) == 4
    assert page["in_current_version"] is True


def test_bad_input(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[FARM])
    unknown = client.get("/v1/review/cases/c404", headers=ANALYST)
    assert unknown.status_code == 404 and unknown.json["error"]["fields"] == {"case_id": "unknown"}
    assert act(client, "c404", action="dismiss", reason="x").status_code == 404
    no_reason = act(client, "c1", action="block")
    assert no_reason.status_code == 422 and "reason" in no_reason.json["error"]["fields"]
    no_label = act(client, "c1", action="label", reason="ring")
    assert no_label.status_code == 422 and "label" in no_label.json["error"]["fields"]
    bad_status = client.get("/v1/review/cases", query_string={"status": "shut"}, headers=ANALYST)
    assert bad_status.status_code == 400 and "status" in bad_status.json["error"]["fields"]
    bad_cursor = client.get("/v1/review/cases", query_string={"cursor": "bm9wZQ"}, headers=ANALYST)
    assert bad_cursor.status_code == 400 and bad_cursor.json["error"]["fields"] == {"cursor": "invalid"}
    assert client.get("/v1/review/cases", headers=ISSUER).status_code == 403
    # Nothing was applied by the refused calls.
    assert redis_client.keys("risk:{u:*}:ban") == [] and redis_client.hlen("risk:{cases}:state") == 0


def test_block_reaches_every_member_at_once_with_one_audit_entry(client: FlaskClient,
                                                                 redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[FARM, PAIR])
    resp = act(client, "c1", action="block", reason="farm of three accounts", members=loaded(client, "c1"))
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["status"] == "resolved" and body["resolution"]["action"] == "block"
    assert sorted((m["node"], m["from"], m["to"]) for m in body["members"]) == [
        ("acct-1", "open", "blocked"), ("acct-2", "open", "blocked"), ("acct-3", "open", "blocked"),
        ("phone-1", "open", "blocked")]
    # The next decision of a member user, on a device of its own, and of the member device.
    assert codes(share(client, user_id="acct-2", device_id="clean-phone"))[0] == "user_blocklist"
    assert codes(share(client, user_id="someone", device_id="phone-1"))[0] == "device_blocklist"
    assert share(client, user_id="p1", device_id="p-phone").json["decision"] == "allow"
    # One audit entry for the case, listing its members; the chain verifies.
    entries = client.get("/v1/audit", query_string={"entity": "case:c1"}, headers=ANALYST).json["entries"]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["action"], entry["actor"], entry["reason"]) == ("block", ANALYST_ID, "farm of three accounts")
    assert sorted(m["node"] for m in entry["details"]["members"]) == ["acct-1", "acct-2", "acct-3", "phone-1"]
    assert client.get("/v1/audit/verify", headers=ANALYST).json["ok"] is True
    # Resolved: out of the open list, in the resolved one, and a second action is a 409.
    assert [c["case_id"] for c in client.get("/v1/review/cases", headers=ANALYST).json["cases"]] == ["c2"]
    resolved = client.get("/v1/review/cases", query_string={"status": "resolved"}, headers=ANALYST).json
    assert [(c["case_id"], c["resolution"]["audit_seq"]) for c in resolved["cases"]] == [("c1", entry["seq"])]
    again = act(client, "c1", action="allowlist", reason="changed my mind")
    assert again.status_code == 409 and again.json["error"]["fields"] == {"case_id": "already resolved"}


def test_a_member_who_left_since_loading_is_reported_not_acted_on(client: FlaskClient,
                                                                  redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case(["a1", "a2", "a3", "a4"], ["ph"])])
    seen = loaded(client, "c1")
    # The next write-back: a4 left the case (same id: 4 of 5 members stay).
    write_back(redis_client, [], cases=[case(["a1", "a2", "a3"], ["ph"])])
    resp = act(client, "c1", action="block", reason="farm", members=seen)
    assert resp.status_code == 409
    assert resp.json["error"]["fields"] == {"members": "left the case since it was loaded: user:a4"}
    assert redis_client.keys("risk:{u:*}:ban") == [] and not redis_client.exists("risk:{d:ph}:ban")
    # Reloaded, the action goes through, and a4 is left alone.
    assert act(client, "c1", action="block", reason="farm", members=loaded(client, "c1")).status_code == 200
    assert share(client, user_id="a4", device_id="own").json["decision"] == "allow"


def test_label_and_dismiss(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[FARM, PAIR])
    assert act(client, "c1", action="label", label="fraud", reason="confirmed ring").status_code == 200
    assert redis_client.hget("risk:{d:phone-1}:review", "label") == b"fraud"
    assert redis_client.hget("risk:{u:acct-3}:review", "label") == b"fraud"
    dismissed = act(client, "c2", action="dismiss", reason="a family")
    assert dismissed.status_code == 200
    assert {m["to"] for m in dismissed.json["members"]} == {None}
    assert not redis_client.exists("risk:{u:p1}:review")
    assert client.get("/v1/review/cases", headers=ANALYST).json["cases"] == []
    assert client.get("/v1/review/cases/c2", headers=ANALYST).json["resolution"]["action"] == "dismiss"


def test_a_large_case_is_acted_on_with_its_members_digest(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case([f"m{i}" for i in range(400)], ["big-phone"])])
    digest = client.get("/v1/review/cases/c1", headers=ANALYST).json["members_digest"]
    too_many = [{"node": f"m{i}", "kind": "user"} for i in range(301)]
    refused = act(client, "c1", action="block", reason="farm", members=too_many)
    assert refused.status_code == 422 and "members" in refused.json["error"]["fields"]
    for malformed in ("0000", "xyz", "ABCDEF0123456789"):
        refused = act(client, "c1", action="block", reason="farm", members_digest=malformed)
        assert refused.status_code == 422
        assert refused.json["error"]["fields"] == {"members_digest": "must match ^[0-9a-f]{16}$"}
    write_back(redis_client, [], cases=[case([f"m{i}" for i in range(399)], ["big-phone"])])
    stale = act(client, "c1", action="block", reason="farm", members_digest=digest)
    assert stale.status_code == 409
    assert stale.json["error"]["fields"] == {"members_digest": "the case has 400 members now, not the ones loaded"}
    fresh = client.get("/v1/review/cases/c1", headers=ANALYST).json["members_digest"]
    done = act(client, "c1", action="block", reason="farm", members_digest=fresh)
    assert done.status_code == 200 and len(done.json["members"]) == 400
