"""Exact windows across slots on a real Redis Cluster: a device's keys and a
user's keys on different masters, shares arriving at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import redis

from riskservice.limits.cluster import ClusterStore, events_shard
from riskservice.limits.keys import decision_keys, legacy_pointer_key, new_decision_id, shard_tag
from riskservice.limits.records import DecisionRecord, decode_log
from riskservice.limits.slots import key_slot
from riskservice.policy.load import load_policy
from riskservice.process import UnsupportedRedis, refuse_a_cluster
from tests.cluster_server import RedisClusterServer
from tests.limits.args import decide_args
from tests.redis_server import RedisServer

PLAN = load_policy("config/policy.yaml").default.plan


def share(store: ClusterStore, event: str, device: str, user: str, now: int | str = "") -> DecisionRecord:
    keys = decision_keys(event, device, user, None)
    args = decide_args(now=now, decision_id=new_decision_id(device, keys.event), user_id=user, device_id=device,
                       plan=PLAN, request=orjson.dumps({"event_id": event}))
    return store.decide(keys, args)


def at_once(store: ClusterStore, shares: list[tuple[str, str, str]]) -> list[DecisionRecord]:
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda s: share(store, *s), shares))
    store.flush()  # settles go out after the answers
    return answers


def test_a_device_and_a_user_live_on_different_masters(redis_cluster_client: redis.RedisCluster) -> None:
    keys = decision_keys("e", "dev-7", "user-7", None)
    master = redis_cluster_client.nodes_manager.get_node_from_slot
    assert master(key_slot(keys.device_state)).name != master(key_slot(keys.user_log)).name


def test_200_shares_of_one_device_at_once_allow_exactly_20(redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(redis_cluster_client)
    answers = at_once(store, [(f"e{i}", "dev-7", "user-7") for i in range(200)])
    assert sum(a.decision == 0 for a in answers) == 20  # device velocity: 20 in 5 minutes
    assert len(decode_log(redis_cluster_client.get("risk:{u:user-7}:log"))) == 20
    assert redis_cluster_client.hlen("risk:{u:user-7}:pend") == 0  # every place settled


def test_one_user_on_80_devices_gets_exactly_50(redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(redis_cluster_client)
    answers = at_once(store, [(f"u{i}", f"dev-{i % 80}", "user-9") for i in range(120)])
    allowed = [a for a in answers if a.decision == 0]
    assert len(allowed) == 50  # user daily cap, never more
    assert {f[0] for a in answers if a.decision for f in a.findings} == {"user_daily_cap"}
    assert len(decode_log(redis_cluster_client.get("risk:{u:user-9}:log"))) == 50


def test_a_replay_counts_once(redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(redis_cluster_client)
    first = share(store, "r1", "dev-1", "user-1")
    again = share(store, "r1", "dev-1", "user-1")
    store.flush()
    assert (again.status, again.decision_id) == ("replay", first.decision_id)
    assert len(decode_log(redis_cluster_client.get("risk:{u:user-1}:log"))) == 1


def test_a_place_whose_settle_never_arrives_is_freed_after_the_hold(redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(redis_cluster_client, hold_ms=2000)
    t0 = 1_800_000_000_000
    for i in range(50):  # the user's day is full
        assert share(store, f"f{i}", f"dev-{i}", "user-5", now=t0 + i).decision == 0
    store.flush()
    redis_cluster_client.delete("risk:{u:user-5}:log")
    # 50 places held by calls that never settle (their app died after reserving):
    for i in range(50):
        redis_cluster_client.hset("risk:{u:user-5}:pend", f"p{i}", f"{t0 + 100},{t0 + 100 + 2000}")
    assert share(store, "g1", "dev-x", "user-5", now=t0 + 1000).decision == 2  # held: the cap is reached
    assert share(store, "g2", "dev-x", "user-5", now=t0 + 2101).decision == 0  # the hold ran out
    store.flush()
    assert redis_cluster_client.hlen("risk:{u:user-5}:pend") == 0


def test_the_service_refuses_to_start_on_a_cluster_rather_than_fail_open(redis_cluster: RedisClusterServer) -> None:
    with pytest.raises(UnsupportedRedis, match="is a Redis Cluster node"):
        refuse_a_cluster(redis_cluster.url)


def test_a_single_redis_or_none_is_accepted(redis_server: RedisServer) -> None:
    refuse_a_cluster(redis_server.url)
    refuse_a_cluster(None)
    refuse_a_cluster("redis://127.0.0.1:1/0")  # not answering: the decision path degrades and recovers


def test_an_outcome_finds_its_decision_in_the_device_slot(redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(redis_cluster_client)
    rec = share(store, "o1", "dev-3", "user-3")
    assert rec.decision == 0
    where = store.resolve(rec.decision_id)
    assert where is not None and where.key.startswith("risk:{d:dev-3}:ev:") and where.user_log == "risk:{u:user-3}:log"
    assert key_slot(where.key) == key_slot("risk:{d:dev-3}:state")
    status, record = store.outcome(where.key, delivered=1, opened=1, claimed=1, window_ms=86_400_000, cap=100,
                                   now_ms=None)
    assert status == "ok" and record is not None and record["o"][:3] == [1, 1, 1]
    # The decision and its outcome are in the shard of the device's slot, in order.
    stream = redis_cluster_client.xrange(events_shard("risk:{d:dev-3}:state"))
    assert [e[1][b"k"] for e in stream] == [b"decision", b"outcome"]
    assert store.resolve("no-such-id") is None and store.resolve("plain") is None


def test_an_id_of_the_previous_release_resolves_through_its_pointer(redis_cluster_client: redis.RedisCluster) -> None:
    """Ids were ``<slot tag>-<hex>`` on a cluster, with a pointer in the tagged slot, until their records expire."""
    store = ClusterStore(redis_cluster_client)
    share(store, "o2", "dev-4", "user-4")
    keys = decision_keys("o2", "dev-4", "user-4", None)
    old_id = f"{shard_tag(keys.device_state)}-{'ab' * 16}"
    redis_cluster_client.set(legacy_pointer_key(old_id), orjson.dumps({"k": keys.event, "m": None, "u": keys.user_log}))
    where = store.resolve(old_id)
    assert where is not None and where.key == keys.event and where.user_log == keys.user_log
    assert store.resolve(f"{shard_tag(keys.device_state)}-{'cd' * 16}") is None
