"""The real-time signal consumer on a real 3-master Redis Cluster: decisions
through the app, the consumer following every slot's shard of the event
stream, and the next decisions carrying its signals; the same traffic on one
Redis gives the same decisions and the same flags."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from config.settings import DEFAULT_POLICY_FILE
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from riskservice.limits.keys import EVENTS, device_tag, signals_key, slot_shard
from riskservice.limits.slots import key_slot
from riskservice.limits.topology import connect_cluster
from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.engine import Write
from riskservice.signals.lease import LEASE_KEY, Lease
from riskservice.signals.wire import order_of
from riskservice.state import risk_state
from tests.cluster_server import RedisClusterServer
from tests.conftest import ISSUER, make_settings
from tests.redis_server import RedisServer


def enforced_policy(tmp_path: Path) -> Path:
    """The shipped policy with ``coupon_repeat`` enforced (it ships in shadow)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY_FILE.read_text().replace("challenge: captcha, shadow: true}",
                                                              "challenge: captcha}"))
    return policy


def every_shard_each_poll(consumer: SignalConsumer) -> SignalConsumer:
    """``consumer``, reading every shard at each poll.

    By default a cluster's consumer reads at each poll only the shards that
    had entries in the last half second of real time, and the others at its
    next sweep (shards.py). These tests drive the event time with a manual
    clock and poll after each request; on a loaded machine more than half a
    second passes between requests, so a shard just written to was read at
    the next sweep instead: the next decision lacked the signal, and entries
    of different shards reached the engine out of event-time order (which
    changes coupon_repeat's sittings and lockstep's evidence). The flags of
    the same traffic must not depend on the machine's speed; the real-time
    schedule itself is tested with settings of its own below.
    """
    consumer.shards.full_s = 0.0
    return consumer


class Deployment:
    """The app and a signal consumer over one Redis or a cluster, on a manual clock."""

    def __init__(self, url: str, tmp_path: Path, cluster: bool, t0: int) -> None:
        # Both deployments start at the same instant (the real time: key expiries run on the real clock).
        self.clock = ManualClock(t0)
        settings = make_settings(url, tmp_path, redis_cluster=cluster, policy_file=enforced_policy(tmp_path))
        self.app: Flask = create_app(settings, clock=self.clock)
        self.client: FlaskClient = self.app.test_client()
        self.redis = connect_cluster(url, 2000) if cluster else redis.Redis.from_url(url)
        self.consumer = every_shard_each_poll(SignalConsumer(self.redis, discover_s=0))
        self.consumer.start(now_ms=self.clock.now_ms())

    def share(self, event: str, device: str, user: str, coupon: str = "c1", **fields: Any) -> dict[str, Any]:
        self.clock.advance(1)
        body = {"event_id": event, "device_id": device, "user_id": user, "coupon_id": coupon, **fields}
        resp = self.client.post("/v1/decisions", json=body, headers=ISSUER)
        assert resp.status_code == 200, resp.get_json()
        answer: dict[str, Any] = resp.get_json()
        assert not answer["degraded"]
        return answer

    def outcome(self, decision_id: str, delivered: int, claimed: int) -> None:
        self.clock.advance(1)
        resp = self.client.post("/v1/outcomes", json={"decision_id": decision_id, "delivered": delivered,
                                                      "opened": claimed, "claimed": claimed}, headers=ISSUER)
        assert resp.status_code == 200, resp.get_json()

    def flags(self, devices: list[str]) -> dict[str, dict[bytes, bytes]]:
        return {d: h for d in devices if (h := self.redis.hgetall(signals_key(d)))}  # type: ignore[union-attr]

    def close(self) -> None:
        risk_state(self.app).store.close()
        self.redis.close()


@pytest.fixture
def t0() -> int:
    return int(time.time()) * 1000


@pytest.fixture
def on_cluster(redis_cluster: RedisClusterServer, redis_cluster_client: redis.RedisCluster,
               tmp_path: Path, t0: int) -> Iterator[Deployment]:
    deployment = Deployment(redis_cluster.url, tmp_path / "cluster", cluster=True, t0=t0)
    yield deployment
    deployment.close()


@pytest.fixture
def on_one_redis(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, t0: int) -> Iterator[Deployment]:
    deployment = Deployment(redis_server.url, tmp_path / "single", cluster=False, t0=t0)
    yield deployment
    deployment.close()


def reasons(answer: dict[str, Any]) -> list[tuple[str, int]]:
    return [(r["code"], r["observed"]) for r in answer["reasons"]]


def traffic(d: Deployment, poll_every: int) -> tuple[list[tuple[str, list[tuple[str, int]]]], list[str]]:
    """Shares that make every kind of signal, over devices on every master; the
    consumer catches up every ``poll_every`` requests. Returns each share's
    (decision, reasons) and the devices used."""
    answers: list[tuple[str, list[tuple[str, int]]]] = []
    devices: list[str] = []
    n = 0

    def share(device: str, user: str, coupon: str = "c1", **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        answer = d.share(f"e{n}", device, user, coupon, **fields)
        answers.append((answer["decision"], reasons(answer)))
        devices.append(device)
        if n % poll_every == 0:
            d.consumer.poll()
        return answer

    # A farm: six accounts on one device (device_rotation from the fifth).
    for i in range(6):
        share("farm", f"farm-user-{i}")
    # A pusher: one coupon again and again, from three devices, in sittings
    # more than an hour apart (coupon_repeat counts sittings).
    for i in range(6):
        share(f"push-dev-{i % 3}", "pusher", "cp-9")
        d.clock.advance(3601)
    # A sprayer: recipients that get two shares each and never claim (dead_recipients).
    for i in range(10):
        answer = share("spray-dev", "sprayer", f"sp-{i}", recipients=[f"victim-{i % 4}"])
        if answer["decision"] == "allow":  # (a refused share has nothing to report)
            d.outcome(answer["decision_id"], 1, 0)
    # A ring: three sharers feeding two sinks that claim everything (sink_feeder).
    for i in range(6):
        answer = share(f"ring-dev-{i % 3}", f"ring-{i % 3}", f"rc-{i}", recipients=["sink-a", "sink-b"])
        if answer["decision"] == "allow":
            d.outcome(answer["decision_id"], 2, 2)
    # A lockstep group: four accounts on four devices, a burst of one coupon, then of another.
    for coupon in ("ls-1", "ls-2", "ls-3"):
        for i in range(4):
            share(f"ls-dev-{i}", f"ls-{i}", coupon)
    d.consumer.poll()
    return answers, devices


def test_the_same_traffic_gives_the_same_decisions_and_flags_on_the_cluster(
        on_cluster: Deployment, on_one_redis: Deployment, redis_cluster: RedisClusterServer, t0: int) -> None:
    cluster_answers, devices = traffic(on_cluster, poll_every=1)
    single_answers, _ = traffic(on_one_redis, poll_every=1)
    # The devices' keys (and so the stream shards) are spread over the three masters.
    assert len({redis_cluster.master_of(device_tag(dev)).port for dev in devices}) == 3
    assert cluster_answers == single_answers
    flags = on_cluster.flags(devices)
    assert flags == on_one_redis.flags(devices)
    # Every signal fired and was judged by a later decision.
    fired = {code for _, rs in cluster_answers for code, _ in rs}
    assert fired >= {"device_rotation", "coupon_repeat", "dead_recipients", "sink_feeder", "lockstep"}
    # The farm's sixth account (the 24-hour rule on accounts per device fires too).
    assert cluster_answers[5] == ("challenge", [("device_many_users", 6), ("device_rotation", 5)])
    # (the farm's first share, the first request, is its oldest evidence)
    assert flags["farm"] == {b"r": f"6@{t0 + 1000 + 30 * 86_400_000}".encode()}
    # /readyz reads the consumer's heartbeat on the cluster too (a beat a second at most: some of what it fed).
    signals = on_cluster.client.get("/readyz").get_json()["signals"]
    assert signals["state"] == "ok" and 1 <= signals["fed"] <= on_cluster.consumer.engine.entries


def test_the_consumer_merges_shards_read_in_batches_by_stream_id(
        on_cluster: Deployment, on_one_redis: Deployment) -> None:
    """A backlog read 3 entries per shard per round: the engine still sees
    every entry in stream-id order, and publishes the same flags."""
    cluster_answers, devices = traffic(on_cluster, poll_every=10**6)  # the consumer polls once, at the end
    assert cluster_answers == traffic(on_one_redis, poll_every=10**6)[0]
    while on_cluster.consumer.poll() or on_one_redis.consumer.poll():
        pass
    flags = on_cluster.flags(devices)
    assert flags == on_one_redis.flags(devices) and set(flags) >= {"farm", "spray-dev", "ring-dev-0"}
    order: dict[tuple[str, str], tuple[int, int]] = {}
    for shard in {slot_shard(EVENTS, key_slot(device_tag(dev))) for dev in devices}:
        for entry_id, fields in on_cluster.redis.xrange(shard):  # type: ignore[union-attr]
            order[fields[b"id"].decode(), fields[b"k"].decode()] = order_of(entry_id)
    # A second consumer fed the whole backlog from the start of every shard, 3 entries per shard a round.
    on_cluster.redis.delete(*{signals_key(dev) for dev in devices})
    again = SignalConsumer(on_cluster.redis, name="signals-2", group="signals-2", batch=3, discover_s=0)
    again.shards.discover(force=True)
    again.shards.place_groups(dict.fromkeys(again.shards.followed.values(), "0"))
    # After its first round (every shard), only shards that returned a whole batch are read:
    # what they still hold must come before what was held back from the others.
    again.shards.hot_s, again.shards.sweep_s, again.shards.full_s = 0.0, 3600.0, 3600.0
    seen: list[tuple[int, int]] = []
    observe = again.engine.observe

    def recording(fields: dict[str, str]) -> list[Write]:
        seen.append(order[fields["id"], fields["k"]])
        return observe(fields)

    again.engine.observe = recording  # type: ignore[method-assign]
    rounds = 0
    while again.poll():
        rounds += 1
    assert rounds > 3 and len(seen) == len(order) and seen == sorted(order.values())
    assert on_cluster.flags(devices) == flags


def test_a_restarted_consumer_rebuilds_from_every_shard(on_cluster: Deployment) -> None:
    _, devices = traffic(on_cluster, poll_every=1)
    before = on_cluster.flags(devices)
    entries = on_cluster.consumer.engine.entries
    on_cluster.redis.delete(*[signals_key(dev) for dev in set(devices)])
    again = every_shard_each_poll(SignalConsumer(on_cluster.redis, name="signals-2", discover_s=0))
    assert again.start(now_ms=on_cluster.clock.now_ms()) == entries
    assert len(again.shards.followed) == len({key_slot(device_tag(dev)) for dev in devices})
    assert on_cluster.flags(devices) == before
    # It follows from where the rebuild stopped: nothing is read twice.
    assert again.poll() == 0
    on_cluster.share("r1", "farm", "farm-user-9")
    assert again.poll() == 1 and again.engine.entries == entries + 1


def test_a_shard_created_after_start_is_found_and_followed(on_cluster: Deployment, t0: int) -> None:
    consumer = on_cluster.consumer
    assert consumer.shards.followed == {}
    for i in range(4):  # four sittings of one coupon, an hour and a second apart (coupon_repeat)
        on_cluster.share(f"n{i}", "new-dev", "new-user", "cp-new")
        on_cluster.clock.advance(3601)
    assert consumer.poll() == 4
    assert list(consumer.shards.followed.values()) == [slot_shard(EVENTS, key_slot(device_tag("new-dev")))]
    # the evidence lasts 3 days from the first sitting (at t0 + 1 s)
    assert on_cluster.redis.hget(signals_key("new-dev"), "c|new-user") == f"4@{t0 + 1000 + 259_200_000}".encode()
    answer = on_cluster.share("n4", "new-dev", "new-user", "cp-new")
    assert reasons(answer) == [("coupon_repeat", 4)]


def test_the_consumer_lease_on_the_cluster(redis_cluster_client: redis.RedisCluster) -> None:
    a, b = Lease(redis_cluster_client, "a", ttl_ms=10_000), Lease(redis_cluster_client, "b", ttl_ms=10_000)
    assert a.acquire() and not b.acquire() and b.current() == "a"
    a.release()
    assert b.acquire() and not a.keep()
    b.release()
    assert redis_cluster_client.get(LEASE_KEY) is None
