"""A decision that reaches Redis after its deadline changes nothing.

A paused Redis (SIGSTOP) queues the call; the app gives up within its budget
and answers degraded. When Redis resumes, the queued script must not count
the share or record a decision that contradicts the degraded answer.
"""

from __future__ import annotations

import time

import redis

from riskservice.decisions.engine import DecisionEngine
from riskservice.decisions.request import validate_decision_request
from riskservice.limits.client import connect
from riskservice.limits.store import RedisStore
from riskservice.policy.load import load_policy
from tests.redis_server import RedisServer

BUDGET_MS = 100


def body(event_id: str) -> dict[str, object]:
    return {"event_id": event_id, "device_id": "dev-1", "user_id": "u-1", "coupon_id": "cp-1"}


def wait_until_idle(client: redis.Redis, deadline_s: float = 5.0) -> None:
    """Until Redis has run what was queued while it was paused."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.02)  # ok-sleep: a real process is catching up after SIGCONT


def test_a_script_run_after_its_deadline_changes_nothing(server: RedisServer) -> None:
    policy = load_policy("config/policy.yaml")
    store = RedisStore(connect(server.url, BUDGET_MS), breaker_cooldown_ms=0, budget_ms=BUDGET_MS)
    engine = DecisionEngine(store, lambda: policy)
    observer = server.client()
    try:
        first = engine.decide(validate_decision_request(body("e1")), body("e1"))
        assert not first.degraded
        state_before = observer.get("risk:{d:dev-1}:state")
        events_before = observer.xlen("risk:events")

        server.pause()
        paused = engine.decide(validate_decision_request(body("e2")), body("e2"))
        assert paused.degraded and paused.decision == "allow"
        # Resume well past the deadline: Redis now runs the queued script.
        time.sleep(3 * BUDGET_MS / 1000)  # ok-sleep: the deadline is real server time
        server.resume()
        wait_until_idle(observer)

        assert observer.get("risk:{d:dev-1}:state") == state_before  # the share was not counted
        assert observer.xlen("risk:events") == events_before  # no share event
        assert len(observer.keys("risk:{d:dev-1}:ev:*")) == 1  # only e1's record
        # What the record holds is what the caller was told: the share allowed
        # during the outage is counted when Redis answers again (outage.py),
        # under the decision id of the degraded answer.
        again = engine.decide(validate_decision_request(body("e2")), body("e2"))
        assert not again.degraded and again.replay
        assert (again.decision, again.decision_id) == ("allow", paused.decision_id)
    finally:
        store.close()
        observer.close()


def test_a_script_within_its_deadline_runs(server: RedisServer) -> None:
    policy = load_policy("config/policy.yaml")
    store = RedisStore(connect(server.url, BUDGET_MS), breaker_cooldown_ms=0, budget_ms=BUDGET_MS)
    engine = DecisionEngine(store, lambda: policy)
    try:
        for i in range(3):
            answer = engine.decide(validate_decision_request(body(f"e{i}")), body(f"e{i}"))
            assert not answer.degraded and answer.decision == "allow"
        assert store.deadline_ms() != ""
    finally:
        store.close()
