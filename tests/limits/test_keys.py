from __future__ import annotations

from redis.crc import key_slot

from riskservice.limits.keys import decision_keys, encode_id


def test_ids_cannot_break_out_of_their_hash_tag() -> None:
    keys = decision_keys("e}:1", "dev}{x", "u:1}", "10.0.0.1")
    assert keys.device_state == "risk:{d:dev%7D%7Bx}:state"
    assert keys.user_log == "risk:{u:u%3A1%7D}:log"
    assert "}" not in encode_id("}") and ":" not in encode_id(":")


def test_encoding_is_injective_for_lookalikes() -> None:
    assert encode_id("a%3A") != encode_id("a:")


def test_every_key_of_a_device_shares_one_cluster_slot() -> None:
    keys = decision_keys("event-1", "device-42", "user-7", None)
    device_keys = [keys.event, keys.device_state, keys.device_ban]
    assert len({key_slot(k.encode()) for k in device_keys}) == 1
    other = decision_keys("event-2", "device-42", "user-8", "1.2.3.4")
    assert key_slot(other.event.encode()) == key_slot(keys.event.encode())
