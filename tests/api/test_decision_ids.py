"""Decision ids name their records: outcomes and challenges find them with no key of their own."""

from __future__ import annotations

import orjson
import redis
from flask.testing import FlaskClient

from riskservice.limits.keys import MAX_DECISION_ID_LENGTH, decision_keys
from tests.api.helpers import share
from tests.conftest import ISSUER


def outcome(client: FlaskClient, decision_id: str, claimed: int = 1) -> int:
    body = {"decision_id": decision_id, "delivered": 1, "opened": 1, "claimed": claimed}
    return client.post("/v1/outcomes", json=body, headers=ISSUER).status_code


def test_a_decision_writes_its_record_and_no_pointer(client: FlaskClient, redis_client: redis.Redis) -> None:
    did = share(client, event_id="named-1", device_id="dev-n", user_id="user-n").json["decision_id"]
    assert redis_client.exists(decision_keys("named-1", "dev-n", "user-n", None).event)
    assert not list(redis_client.scan_iter(match="*dec:*"))
    assert outcome(client, did) == 200


def test_an_id_that_is_not_the_records_own_finds_nothing(client: FlaskClient) -> None:
    """The random part is kept in the record: knowing the event and the device is not enough."""
    did = share(client, device_id="dev-f").json["decision_id"]
    forged = ("A" if did[0] != "A" else "B") + did[1:]
    assert outcome(client, forged) == 404
    challenged = client.post(f"/v1/challenges/{forged}", json={"passed": True, "kind": "captcha"}, headers=ISSUER)
    assert challenged.status_code == 404
    assert outcome(client, did) == 200


def test_any_device_id_gives_an_id_that_works_in_a_body_and_a_path(client: FlaskClient) -> None:
    for device in ("设备 #1/?%", "a}:{b", "😀" * 128):
        for _ in range(21):  # the 21st share of a device in 5 minutes is challenged
            answer = share(client, device_id=device, user_id=f"user-{len(device)}").json
        assert answer["decision"] == "challenge", answer
        did = answer["decision_id"]
        assert len(did) <= MAX_DECISION_ID_LENGTH
        passed = client.post(f"/v1/challenges/{did}", json={"passed": True, "kind": "captcha"}, headers=ISSUER)
        assert passed.status_code == 200 and passed.json["counted"] is True, passed.json
        assert outcome(client, did) == 200


def test_ids_of_the_previous_release_still_resolve_through_their_pointer(
        client: FlaskClient, redis_client: redis.Redis) -> None:
    """Until the last pointer an older release wrote expires, its ids keep working."""
    share(client, event_id="old-1", device_id="dev-o", user_id="user-o", merchant_id="m-1")
    keys = decision_keys("old-1", "dev-o", "user-o", None)
    old_id = "5b41abe9c19d4dcea909149d9b166cf3"
    redis_client.set(f"risk:{{dec:{old_id}}}", orjson.dumps({"k": keys.event, "m": "m-1", "u": keys.user_log}),
                     px=60_000)
    assert outcome(client, old_id) == 200
    assert outcome(client, "6" + old_id[1:]) == 404


def test_a_decision_id_too_long_to_be_one_is_refused_naming_the_field(client: FlaskClient) -> None:
    body = {"decision_id": "a" * (MAX_DECISION_ID_LENGTH + 1), "delivered": 1, "opened": 1, "claimed": 1}
    answer = client.post("/v1/outcomes", json=body, headers=ISSUER)
    assert answer.status_code == 422 and "decision_id" in answer.json["error"]["fields"]
