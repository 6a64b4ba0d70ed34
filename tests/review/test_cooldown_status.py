"""A rule's cool-down (repeated failed challenges) is no analyst's block: the
dossier, the queue and the console agree on the device's status, and an
analyst can still block, flag or lift it."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from riskservice.api.schemas import Dossier
from riskservice.limits.clock import ManualClock
from tests.api.helpers import codes, share
from tests.conftest import ANALYST, ISSUER
from tests.review.helpers import act, queue


def cool_down(client: FlaskClient, device: str) -> None:
    """Five failed SMS challenges on ``device``: the rule's cool-down."""
    ids = [share(client, device_id=device, user_id="u", recipient_count=11).json["decision_id"] for _ in range(5)]
    for did in ids:
        client.post(f"/v1/challenges/{did}", json={"passed": False, "kind": "sms"}, headers=ISSUER)
    assert codes(share(client, device_id=device, user_id="u")) == ["challenge_failures"]


def dossier(client: FlaskClient, device: str) -> dict:  # type: ignore[type-arg]
    resp = client.get(f"/v1/review/devices/{device}", headers=ANALYST)
    assert resp.status_code == 200, resp.json
    Dossier.model_validate(resp.json)
    return resp.json  # type: ignore[no-any-return]


def button(html: str, action: str) -> str:
    found = re.search(rf'<button type="submit" name="action" value="{action}"[^>]*>', html)
    assert found, action
    return found.group(0)


def test_the_dossier_and_the_queue_agree_during_a_cool_down(client: FlaskClient) -> None:
    cool_down(client, "dev-c")
    d = dossier(client, "dev-c")
    # the challenged decisions show their results (the last one, the cool-down's block, has none)
    assert [x["challenge_result"] for x in d["decisions"]] == [None] + ["failed"] * 5
    html = client.get("/console/devices/dev-c", headers=ANALYST).data.decode()
    assert html.count('<span class="meta">failed</span>') == 5
    assert d["status"] == "open" and d["cooling_down"] is True and d["ban"]["actor"] == "rule"
    assert "dev-c" in [item["device_id"] for item in queue(client, status="open")["devices"]]
    assert "dev-c" not in [item["device_id"] for item in queue(client, status="blocked")["devices"]]


def test_a_block_replaces_the_cool_down(client: FlaskClient) -> None:
    cool_down(client, "dev-b")
    resp = act(client, "dev-b", "block", reason="seen in a farm")
    assert resp.status_code == 200
    assert resp.json["audit"]["details"]["replaced_cooldown"] is True
    assert resp.json["audit"]["details"]["status_from"] == "open"
    d = dossier(client, "dev-b")
    assert (d["status"], d["cooling_down"], d["ban"]["actor"]) == ("blocked", False, resp.json["audit"]["actor"])
    assert codes(share(client, device_id="dev-b", user_id="u")) == ["device_blocklist"]


def test_a_block_ending_before_the_cool_down_is_refused(client: FlaskClient) -> None:
    """A block replaces the cool-down: one ending sooner would free the device
    early (QA13 D7), so it is a 409 naming hours; longer, or no end, replaces it."""
    cool_down(client, "dev-s")
    short = act(client, "dev-s", "block", hours=0.01)
    assert short.status_code == 409 and "hours" in short.json["error"]["fields"]
    assert dossier(client, "dev-s")["cooling_down"] is True
    assert act(client, "dev-s", "block", hours=2).status_code == 200


def test_a_ban_of_under_a_second_is_refused(client: FlaskClient) -> None:
    resp = act(client, "dev-z", "block", hours=1e-12)
    assert resp.status_code == 422 and "hours" in resp.json["error"]["fields"]


def test_an_unblock_lifts_the_cool_down_and_a_flag_keeps_it(client: FlaskClient) -> None:
    cool_down(client, "dev-f")
    flagged = act(client, "dev-f", "flag", reason="look at it")
    assert flagged.status_code == 200 and flagged.json["status"] == "open"
    assert dossier(client, "dev-f")["cooling_down"] is True
    lifted = act(client, "dev-f", "unblock", reason="a traveller, not a farm")
    assert lifted.status_code == 200 and lifted.json["audit"]["details"]["lifted_cooldown"] is True
    assert dossier(client, "dev-f")["cooling_down"] is False
    assert share(client, device_id="dev-f", user_id="u").json["decision"] == "allow"


def test_the_console_offers_block_during_a_cool_down(client: FlaskClient) -> None:
    cool_down(client, "dev-k")
    html = client.get("/console/devices/dev-k", headers=ANALYST).data.decode()
    assert "Cooling down" in html
    for action in ("block", "unblock", "flag"):
        assert "disabled" not in button(html, action)
    act(client, "dev-k", "block", reason="seen in a farm")
    html = client.get("/console/devices/dev-k", headers=ANALYST).data.decode()
    assert "disabled" in button(html, "block") and "disabled" not in button(html, "unblock")


def test_an_ended_ban_is_no_ban_in_the_dossier_or_the_console(client: FlaskClient, clock: ManualClock) -> None:
    cool_down(client, "dev-e")
    clock.advance(3601)  # the cool-down (an hour) is over; its key lives a day longer
    d = dossier(client, "dev-e")
    assert (d["ban"], d["cooling_down"], d["status"]) == (None, False, "open")
    html = client.get("/console/devices/dev-e", headers=ANALYST).data.decode()
    assert "Cooling down" not in html and "Blocked by" not in html
    assert "disabled" not in button(html, "block") and "disabled" in button(html, "unblock")


def test_a_passed_challenge_shows_in_the_dossier(client: FlaskClient) -> None:
    did = share(client, device_id="dev-p", user_id="u", recipient_count=11).json["decision_id"]
    client.post(f"/v1/challenges/{did}", json={"passed": True, "kind": "sms"}, headers=ISSUER)
    (decision,) = dossier(client, "dev-p")["decisions"]
    assert (decision["decision"], decision["challenge_result"], decision["challenge_held"]) == (
        "challenge", "passed", None)
