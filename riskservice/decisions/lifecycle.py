"""After a decision: outcomes of shares and results of challenges."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskservice.decisions.request import ID_PATTERN
from riskservice.errors import ApiError, Conflict, NotFound, ValidationFailed
from riskservice.limits.clock import Clock, ServerClock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.contract import Plan
from riskservice.limits.keys import EVENTS, MAX_DECISION_ID_LENGTH, record_device
from riskservice.limits.records import RecordLocation
from riskservice.limits.store import RedisStore
from riskservice.policy.load import CompiledRules, Policy
from riskservice.policy.rollout import enforced

Count = Field(ge=0, le=1_000_000)
# A decision id names its record, device id included (keys.new_decision_id): longer than other ids.
DecisionId = Annotated[str, Field(min_length=1, max_length=MAX_DECISION_ID_LENGTH, pattern=ID_PATTERN)]


class OutcomeRequest(BaseModel):
    """``POST /v1/outcomes``: what became of a share, in counts of recipients."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    decision_id: DecisionId
    delivered: int = Count
    opened: int = Count
    claimed: int = Field(ge=0, le=1_000_000, description="claimed >= 1 makes the share a success")

    @model_validator(mode="after")
    def _consistent(self) -> OutcomeRequest:
        if self.opened > self.delivered:
            raise ValueError("opened: cannot exceed delivered")
        if self.claimed > self.delivered:
            raise ValueError("claimed: cannot exceed delivered")
        return self


class ChallengeResult(BaseModel):
    """``POST /v1/challenges/<decision_id>``: whether the sharer passed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    passed: bool
    kind: Literal["captcha", "sms"]


def device_plan(compiled: CompiledRules, device_id: str) -> bytes:
    """The plan as the device's own decisions apply it: under a gray rollout of
    ``device_blocklist`` a device outside the enforced share has the rule in
    shadow (decide.lua's arms), so a ban does not hold its passes either."""
    if not compiled.rollouts:
        return compiled.plan
    shadow = next((s or not enforced(name, device_id, percent)
                   for name, percent, s in compiled.rollouts if name == "device_blocklist"), None)
    return compiled.plan if shadow is None else _blocklist_shadow(compiled.plan, shadow)


@functools.lru_cache(maxsize=64)
def _blocklist_shadow(packed: bytes, shadow: bool) -> bytes:
    """``packed`` with ``device_blocklist``'s shadow flag set to ``shadow``
    (two variants per merchant plan, built once rather than per challenge)."""
    plan = Plan.unpack(packed)
    rule = plan.rules["device_blocklist"]
    if rule.shadow == shadow:
        return packed
    return replace(plan, rules={**plan.rules, "device_blocklist": replace(rule, shadow=shadow)}).pack()


class ShareLifecycle:
    """Records outcomes and challenge results against stored decisions."""

    def __init__(self, store: RedisStore | ClusterStore, policy: Callable[[], Policy], *, clock: Clock | None = None,
                 retention_ms: int = 30 * 86_400_000) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or ServerClock()
        self.retention_ms = retention_ms

    def _locate(self, decision_id: str) -> RecordLocation:
        where = self.store.resolve(decision_id)
        if where is None:
            raise NotFound(f"no decision {decision_id} (unknown, or older than its retention)",
                           {"decision_id": "not found"})
        return where

    def outcome(self, req: OutcomeRequest) -> dict[str, Any]:
        """Record an outcome; the same report again is answered the same."""
        where = self._locate(req.decision_id)
        policy = self.policy()
        rule = policy.for_merchant(where.merchant_id).rules.low_success_rate
        assert policy.bounds is not None
        status, rec = self.store.outcome(
            where.key, delivered=req.delivered, opened=req.opened, claimed=req.claimed,
            window_ms=rule.window_s * 1000, cap=policy.bounds.outcome_log_cap,
            now_ms=self.clock.now_ms(), retention_ms=self.retention_ms, events=EVENTS,
        )
        if status == "not_found":
            raise NotFound(f"no decision {req.decision_id}", {"decision_id": "not found"})
        assert rec is not None
        if status == "not_a_share":
            what = "blocked" if rec["dec"] == 2 else "challenged and not passed"
            if rec.get("held"):
                what = f"challenged and passed while the device was banned ({rec['held']}): not counted"
            raise Conflict(f"decision {req.decision_id} was {what}: no share happened to report on",
                           {"decision_id": f"decision was {what}"})
        if status == "too_many":
            raise ValidationFailed(f"delivered ({req.delivered}) exceeds the share's {rec['r']} recipients",
                                   {"delivered": f"must be at most {rec['r']}"})
        if status == "decreased":
            old = rec["o"]
            raise Conflict(
                f"an outcome was already reported (delivered {old[0]}, opened {old[1]}, claimed {old[2]}); "
                "later reports may only grow", {"decision_id": "outcome counts may only grow"})
        return {"decision_id": req.decision_id, "delivered": req.delivered, "opened": req.opened,
                "claimed": req.claimed, "success": req.claimed >= 1, "replayed": status == "replay"}

    def challenge(self, decision_id: str, result: ChallengeResult) -> dict[str, Any]:
        """Record a challenge result; a pass counts the share now, unless a ban
        blocks the device's decisions (then ``counted`` is false and
        ``blocked_by`` names the ban, as a replay says again)."""
        where = self._locate(decision_id)
        compiled = self.policy().for_merchant(where.merchant_id)
        status, rec, cooled = self.store.challenge(
            where.key, where.user_log, passed=result.passed, kind=result.kind,
            plan=device_plan(compiled, record_device(where.key)),
            now_ms=self.clock.now_ms(), retention_ms=self.retention_ms, events=EVENTS,
        )
        errors: dict[str, ApiError] = {
            "not_found": NotFound(f"no decision {decision_id}", {"decision_id": "not found"}),
            "not_challenged": Conflict(f"decision {decision_id} was not a challenge",
                                       {"decision_id": "not challenged"}),
            "kind_mismatch": ValidationFailed(
                f"decision {decision_id} asked for {rec['ch'] if rec else '?'}, not {result.kind}",
                {"kind": f"must be {rec['ch'] if rec else '?'}"}),
            "conflict": Conflict(
                f"decision {decision_id} already has a result ({rec.get('cs') if rec else '?'})",
                {"passed": "a different result was already recorded"}),
        }
        if status in errors:
            raise errors[status]
        assert rec is not None
        # (the record says whether the share counted: a replay answers as the first report did)
        counted = result.passed and rec.get("c") == 1
        return {"decision_id": decision_id, "passed": result.passed, "counted": counted,
                "blocked_by": None if counted or not result.passed else rec.get("held"),
                "cooldown": cooled, "replayed": status == "replay"}
