"""Our hash slots are Redis Cluster's, checked against a real cluster."""

from __future__ import annotations

import random

import redis

from riskservice.limits.keys import decision_keys
from riskservice.limits.slots import SLOTS, key_slot, slot_tag


def test_key_slots_match_the_cluster(redis_cluster_client: redis.RedisCluster) -> None:
    rng = random.Random(5)
    keys = [*decision_keys("e1", "dev/1 #?%", "用户", "203.0.113.5"),
            *(f"k{rng.random()}" for _ in range(200)), "a{}b", "{}", "x{y}{z}", "{user1000}.following"]
    node = redis_cluster_client.get_random_node()
    for key in keys:
        assert key_slot(key) == redis_cluster_client.execute_command("CLUSTER KEYSLOT", key, target_nodes=node), key


def test_a_slot_tag_lands_in_its_slot() -> None:
    rng = random.Random(9)
    for slot in [0, 1, SLOTS - 1, *(rng.randrange(SLOTS) for _ in range(50))]:
        assert key_slot(f"risk:events:{{{slot_tag(slot)}}}") == slot


def test_a_device_and_its_shard_share_a_slot() -> None:
    keys = decision_keys("e1", "dev-42", "u-7", None)
    slot = key_slot(keys.device_state)
    assert key_slot(f"risk:events:{{{slot_tag(slot)}}}") == slot == key_slot(keys.event)
