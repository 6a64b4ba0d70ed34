from __future__ import annotations

import re

from redis.crc import key_slot

from riskservice.limits.keys import (
    MAX_DECISION_ID_LENGTH,
    decision_keys,
    encode_id,
    legacy_pointer_key,
    new_decision_id,
    record_key,
)


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


def test_a_decision_id_names_its_record_whatever_the_device_id() -> None:
    for device in ("dev-1", "a}:{b", "设备 #1/?%", "😀" * 128):
        keys = decision_keys("event-1", device, "user-7", None)
        decision_id = new_decision_id(device, keys.event)
        assert record_key(decision_id) == keys.event
        assert len(decision_id) <= MAX_DECISION_ID_LENGTH
        assert re.fullmatch(r"[A-Za-z0-9_-]{33,}", decision_id)  # safe in a URL path as it is
    first, second = (new_decision_id("dev-1", keys.event) for _ in range(2))
    assert first != second and first[16:] == second[16:]  # fresh randomness, the same record


def test_ids_naming_no_record_and_the_previous_release_ids() -> None:
    keys = decision_keys("event-1", "dev-1", "user-7", None)
    decision_id = new_decision_id("dev-1", keys.event)
    for bad in ("", "x", decision_id[:32], decision_id + "!", decision_id[:32] + "_w", decision_id[:31] + "=A",
                decision_id + "A" * MAX_DECISION_ID_LENGTH):
        assert record_key(bad) is None, bad
    assert legacy_pointer_key(decision_id) is None
    assert legacy_pointer_key("0" * 32) == "risk:{dec:" + "0" * 32 + "}"
    assert legacy_pointer_key("s12-" + "a" * 32) == "risk:{s12}:dec:s12-" + "a" * 32
    assert legacy_pointer_key("s12-" + "a" * 31) is None and record_key("0" * 32) is None
    assert record_key("s12-" + "a" * 32) is None
