"""The decision engine over the in-memory reference store: no HTTP, no Redis.

:class:`MemoryStore` is the executable reference of the decision script's
count windows, bans, idempotency and severity combination; the engine is the
same one the API uses. The clock is a :class:`ManualClock`, so windows are
crossed by moving time, never by waiting.
"""

from __future__ import annotations

import pytest

from riskservice.decisions.engine import DecisionEngine
from riskservice.errors import Conflict, StorageError
from riskservice.limits.clock import ManualClock
from riskservice.limits.contract import DecideArgs
from riskservice.limits.keys import DecisionKeys, decision_keys
from riskservice.limits.memory import MemoryStore
from riskservice.limits.records import DecisionRecord
from riskservice.policy.load import Policy, parse_policy
from riskservice.policy.rollout import enforced
from tests.decisions.helpers import DEFAULT_POLICY, body, codes, policy_with, request, share

START_MS = 1_700_000_000_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def engine_for(policy: Policy, store: MemoryStore, clock: ManualClock) -> DecisionEngine:
    return DecisionEngine(store, lambda: policy, clock=clock)


@pytest.fixture
def engine(store: MemoryStore, clock: ManualClock) -> DecisionEngine:
    return engine_for(parse_policy(DEFAULT_POLICY), store, clock)


# Count windows


def test_twenty_shares_in_5_minutes_are_allowed_the_21st_is_challenged(
        engine: DecisionEngine, clock: ManualClock) -> None:
    for i in range(20):
        decision = share(engine)
        assert (decision.decision, decision.reasons, decision.degraded) == ("allow", [], False), i
        clock.advance(1)
    decision = share(engine)
    assert (decision.decision, decision.challenge) == ("challenge", "captcha")
    assert decision.reasons == [{
        "code": "device_velocity", "action": "challenge", "challenge": "captcha",
        "message": "device would make 21 shares in 5 min, above the limit of 20",
        "observed": 21, "limit": 20, "window_s": 300,
        # The first share (t=0 s) leaves the window at t=300 s; now is t=20 s.
        "retry_after_s": 280,
    }]
    assert (decision.shadow, decision.arms) == ([], {})  # no rule is under a gray rollout
    # Refused: nothing left, and the window frees a place when the first share leaves.
    assert decision.headers["RateLimit"] == '"device_velocity";r=0;t=280'


def test_the_velocity_window_slides(engine: DecisionEngine, clock: ManualClock) -> None:
    for _ in range(20):
        assert share(engine).decision == "allow"
    clock.advance(299.999)
    assert codes(share(engine)) == ["device_velocity"]
    clock.advance(0.001)  # all twenty are exactly 300 s old: out of the window
    assert share(engine).decision == "allow"


def test_the_device_daily_cap_blocks_the_51st_share(engine: DecisionEngine, clock: ManualClock) -> None:
    for i in range(50):
        # Five users, ten shares each: under the user cap and the users-per-device limit.
        assert share(engine, user_id=f"u{i % 5}").decision == "allow", i
        clock.advance(16)  # at most 19 shares in any 300 s: under the velocity limit
    decision = share(engine, user_id="u0")
    assert (decision.decision, decision.challenge) == ("block", None)
    assert decision.reasons == [{
        "code": "device_daily_cap", "action": "block", "challenge": None,
        "message": "device would make 51 shares in 24 h, above the limit of 50",
        "observed": 51, "limit": 50, "window_s": 86_400,
        # The first share leaves the day at 86 400 s; now is 50 * 16 = 800 s.
        "retry_after_s": 85_600,
    }]


def test_the_user_daily_cap_counts_across_devices(engine: DecisionEngine, clock: ManualClock) -> None:
    for i in range(50):
        assert share(engine, device_id=f"dev-{i}", user_id="heavy").decision == "allow", i
    decision = share(engine, device_id="dev-new", user_id="heavy")
    assert (decision.decision, codes(decision)) == ("block", ["user_daily_cap"])
    assert (decision.reasons[0]["observed"], decision.reasons[0]["limit"]) == (51, 50)
    # Another user on the same new device is not capped.
    assert share(engine, device_id="dev-new", user_id="light").decision == "allow"
    clock.advance(86_400)
    assert share(engine, device_id="dev-new", user_id="heavy").decision == "allow"


def test_the_sixth_user_on_a_device_is_challenged(engine: DecisionEngine) -> None:
    for i in range(5):
        assert share(engine, user_id=f"acct-{i}").decision == "allow"
    decision = share(engine, user_id="acct-5")
    assert (decision.decision, decision.challenge, codes(decision)) == ("challenge", "captcha",
                                                                         ["device_many_users"])
    assert decision.reasons[0]["observed"] == 6
    # A user already seen on the device is not a new one.
    assert share(engine, user_id="acct-2").decision == "allow"


def test_refused_shares_consume_no_quota(engine: DecisionEngine) -> None:
    for _ in range(30):
        assert share(engine, text="转发抽奖").decision == "block"
    for i in range(20):
        assert share(engine).decision == "allow", i
    assert codes(share(engine)) == ["device_velocity"]


# Bans


@pytest.mark.parametrize(("kind", "field", "value", "message"), [
    ("device", "device_id", "farm-1", "device is blocklisted: fraud ring"),
    ("user", "user_id", "bad-user", "user is blocklisted: fraud ring"),
    ("ip", "ip", "10.9.8.7", "ip address is blocklisted: fraud ring"),
])
def test_a_ban_blocks(engine: DecisionEngine, store: MemoryStore, kind: str, field: str, value: str,
                      message: str) -> None:
    data = body(**{field: value})
    keys = decision_keys(data["event_id"], data["device_id"], data["user_id"], data.get("ip"))
    store.set_ban({"device": keys.device_ban, "user": keys.user_ban, "ip": keys.ip_ban}[kind], "fraud ring")
    decision = engine.decide(request(data), data)
    assert (decision.decision, decision.challenge) == ("block", None)
    assert decision.reasons == [{
        "code": f"{kind}_blocklist", "action": "block", "challenge": None, "message": message,
        "observed": "fraud ring", "limit": None, "window_s": None, "retry_after_s": None,
    }]
    # Nobody else is banned.
    assert share(engine, device_id="other-device", user_id="other-user", ip="10.0.0.1").decision == "allow"


def test_a_ban_with_an_end_reports_it_and_lifts_itself(engine: DecisionEngine, store: MemoryStore,
                                                       clock: ManualClock) -> None:
    keys = decision_keys("any", "cool", "user-1", None)
    store.set_ban(keys.device_ban, "cool-down", until_ms=clock.now_ms() + 3_600_000)
    clock.advance(0.5)
    decision = share(engine, device_id="cool")
    assert (decision.decision, decision.reasons[0]["retry_after_s"]) == ("block", 3600)
    clock.advance(3599.5)
    assert share(engine, device_id="cool").decision == "allow"


# Shadow rules and gray rollouts


def test_shadow_rules_are_reported_not_enforced() -> None:
    policy = policy_with(merchants="{watching: {sensitive_copy: {shadow: true}, device_velocity: {shadow: true}}}")
    engine = engine_for(policy, MemoryStore(), ManualClock(START_MS))
    decision = share(engine, merchant_id="watching", text="转发得现金")
    assert (decision.decision, decision.reasons) == ("allow", [])
    assert codes(decision, "shadow") == ["sensitive_copy"]
    for _ in range(24):
        decision = share(engine, merchant_id="watching")
        assert (decision.decision, decision.reasons) == ("allow", [])
    # A shadowed window still counts what it lets through: this is share 25
    # (the one with shadowed copy was admitted too).
    assert decision.shadow == [{
        "code": "device_velocity", "action": "challenge", "challenge": "captcha",
        "message": "device would make 25 shares in 5 min, above the limit of 20",
        "observed": 25, "limit": 20, "window_s": 300, "retry_after_s": 300,
    }]
    # Other merchants are enforced.
    assert share(engine, merchant_id="other").decision == "challenge"


def test_a_shadowed_block_does_not_outrank_an_enforced_challenge() -> None:
    policy = policy_with(merchants="{m: {sensitive_copy: {shadow: true}}}")
    decision = share(engine_for(policy, MemoryStore(), ManualClock(START_MS)), merchant_id="m",
                     text="转发得现金", recipient_count=11)
    assert (decision.decision, decision.challenge) == ("challenge", "sms")
    assert (codes(decision), codes(decision, "shadow")) == (["fan_out"], ["sensitive_copy"])


DEVICES = [f"dev-{i}" for i in range(400)]


def arm_of(engine: DecisionEngine, device_id: str) -> tuple[str, str]:
    """Where a share over the fan-out limit lands for this device, and the arm the engine reports."""
    decision = share(engine, device_id=device_id, user_id=device_id, recipient_count=11)
    where = "enforced" if codes(decision) == ["fan_out"] else "shadow"
    assert codes(decision, "reasons" if where == "enforced" else "shadow") == ["fan_out"]
    return where, decision.arms["fan_out"]


def test_a_gray_rollout_puts_each_device_in_one_arm_stably() -> None:
    quarter = engine_for(policy_with(fan_out="{limit: 10, action: challenge, challenge: sms, rollout: 25}"),
                         MemoryStore(), ManualClock(START_MS))
    arms = {}
    for device in DEVICES:
        where, reported = arm_of(quarter, device)
        assert where == reported, device
        arms[device] = where
    # The same device, asked again, stays in its arm.
    assert {d: arm_of(quarter, d)[0] for d in DEVICES} == arms
    enforced_devices = {d for d, arm in arms.items() if arm == "enforced"}
    # About a quarter (binomial sd ~8.7 of 400): the split is by device, not by request.
    assert 70 <= len(enforced_devices) <= 130
    # Raising the percentage only moves devices from shadow to enforced.
    half = engine_for(policy_with(fan_out="{limit: 10, action: challenge, challenge: sms, rollout: 50}"),
                      MemoryStore(), ManualClock(START_MS))
    enforced_at_half = {d for d in DEVICES if arm_of(half, d)[0] == "enforced"}
    assert enforced_devices < enforced_at_half
    assert 170 <= len(enforced_at_half) <= 230


def test_a_gray_rollout_of_a_stateful_rule_reaches_the_store(clock: ManualClock) -> None:
    policy = policy_with(device_velocity="{limit: 2, window_s: 300, action: challenge, challenge: captcha, "
                                         "rollout: 50}")
    engine = engine_for(policy, MemoryStore(), clock)
    seen = set()
    for device in DEVICES[:40]:
        for _ in range(2):
            assert share(engine, device_id=device, user_id=device).decision == "allow"
        third = share(engine, device_id=device, user_id=device)
        arm = third.arms["device_velocity"]
        assert arm == ("enforced" if enforced("device_velocity", device, 50) else "shadow")
        assert third.decision == ("challenge" if arm == "enforced" else "allow"), device
        assert codes(third, "reasons" if arm == "enforced" else "shadow") == ["device_velocity"]
        seen.add(arm)
    assert seen == {"enforced", "shadow"}


# Idempotency


def test_a_replay_returns_the_same_decision_and_counts_once(engine: DecisionEngine, clock: ManualClock) -> None:
    data = body(recipient_count=11)
    first = engine.decide(request(data), data)
    clock.advance(5)
    again = engine.decide(request(data), dict(reversed(data.items())))  # same body, keys in another order
    assert (first.replay, again.replay) == (False, True)
    assert (again.decision, again.challenge, again.decision_id, again.ts_ms, again.reasons) == (
        first.decision, first.challenge, first.decision_id, first.ts_ms, first.reasons)
    assert (first.decision, first.ts_ms) == ("challenge", START_MS)
    # Neither the challenged share nor its replay consumed quota.
    assert share(engine).headers["RateLimit"] == '"device_velocity";r=19;t=300'


def test_a_replayed_allow_counts_once(engine: DecisionEngine) -> None:
    data = body()
    for _ in range(3):
        assert engine.decide(request(data), data).headers["RateLimit"] == '"device_velocity";r=19;t=300'
    assert share(engine).headers["RateLimit"] == '"device_velocity";r=18;t=300'


def test_an_event_id_reused_with_another_body_is_a_conflict(engine: DecisionEngine) -> None:
    data = body()
    engine.decide(request(data), data)
    other = {**data, "coupon_id": "cp-2"}
    with pytest.raises(Conflict) as caught:
        engine.decide(request(other), other)
    assert caught.value.fields == {"event_id": "reused with a different request body"}
    assert caught.value.status == 409


# RateLimit headers


def test_ratelimit_headers_follow_the_velocity_window(engine: DecisionEngine, clock: ManualClock) -> None:
    decision = share(engine)
    assert decision.headers == {"RateLimit-Policy": '"device_velocity";q=20;w=300',
                                "RateLimit": '"device_velocity";r=19;t=300'}
    clock.advance(100)
    assert share(engine).headers["RateLimit"] == '"device_velocity";r=18;t=200'
    clock.advance(0.5)
    # A blocked share takes nothing: the count stays; the reset rounds up.
    assert share(engine, text="转发得现金").headers["RateLimit"] == '"device_velocity";r=18;t=200'


def test_no_ratelimit_headers_when_the_velocity_rule_is_off(clock: ManualClock) -> None:
    policy = policy_with(device_velocity="{enabled: false, limit: 20, window_s: 300, action: challenge, "
                                         "challenge: captcha}")
    assert share(engine_for(policy, MemoryStore(), clock)).headers == {}


# The store unavailable


class UnavailableStore:
    """A store whose every call fails as an unreachable Redis does."""

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        self.calls += 1
        raise StorageError("connection refused")


UNAVAILABLE = {"code": "redis_unavailable", "message": "risk state unavailable; answered by the configured fail mode",
               "observed": None, "limit": None, "window_s": None, "retry_after_s": None}


@pytest.mark.parametrize(("fail_mode", "decision", "challenge", "reasons"), [
    ("allow", "allow", None, []),
    ("challenge", "challenge", "captcha", [{**UNAVAILABLE, "action": "challenge", "challenge": "captcha"}]),
    ("block", "block", None, [{**UNAVAILABLE, "action": "block", "challenge": None}]),
])
def test_the_fail_mode_answers_when_the_store_is_unavailable(
        clock: ManualClock, fail_mode: str, decision: str, challenge: str | None,
        reasons: list[dict[str, object]]) -> None:
    store = UnavailableStore()
    engine = DecisionEngine(store, lambda: parse_policy(DEFAULT_POLICY), clock=clock, fail_mode=fail_mode)
    answer = share(engine)
    assert store.calls == 1
    assert (answer.decision, answer.challenge, answer.reasons, answer.degraded) == (decision, challenge, reasons,
                                                                                      True)
    assert (answer.replay, answer.headers) == (False, {})


def test_stateless_rules_still_apply_when_the_store_is_unavailable(clock: ManualClock) -> None:
    engine = DecisionEngine(UnavailableStore(), lambda: parse_policy(DEFAULT_POLICY), clock=clock,
                            fail_mode="challenge")
    copy = share(engine, text="转发得现金")
    assert (copy.decision, codes(copy), copy.degraded) == ("block", ["sensitive_copy", "redis_unavailable"], True)
    fan = share(engine, recipient_count=11)
    # The fail mode's captcha is weaker than fan-out's sms.
    assert (fan.decision, fan.challenge, codes(fan)) == ("challenge", "sms", ["fan_out", "redis_unavailable"])


# Severity combination


def test_block_beats_challenge(engine: DecisionEngine) -> None:
    decision = share(engine, recipient_count=50, text="转发得现金")
    assert (decision.decision, decision.challenge) == ("block", None)
    assert codes(decision) == ["sensitive_copy", "fan_out"]  # most severe first


def test_a_ban_beats_a_window_challenge(engine: DecisionEngine, store: MemoryStore) -> None:
    for _ in range(20):
        share(engine)
    store.set_ban(decision_keys("any", "dev-1", "user-1", None).user_ban, "fraud ring")
    decision = share(engine)
    assert (decision.decision, decision.challenge) == ("block", None)
    assert codes(decision) == ["user_blocklist", "device_velocity"]


def test_sms_beats_captcha(engine: DecisionEngine) -> None:
    for _ in range(20):
        share(engine)
    decision = share(engine, recipient_count=11)
    assert (decision.decision, decision.challenge) == ("challenge", "sms")
    assert codes(decision) == ["fan_out", "device_velocity"]
    assert [r["challenge"] for r in decision.reasons] == ["sms", "captcha"]


def test_the_response_scores_the_enforced_severity(engine: DecisionEngine) -> None:
    assert share(engine).to_response()["scores"] == {"risk": 0.0, "anomaly": None, "kol": None}
    assert share(engine, recipient_count=11).to_response()["scores"] == {"risk": 0.5, "anomaly": None, "kol": None}
    assert share(engine, text="转发得现金").to_response()["scores"] == {"risk": 1.0, "anomaly": None, "kol": None}
