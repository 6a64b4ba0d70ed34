"""The issuance service's API: decisions before every share, then their
outcomes and challenge results, and reward checks.

Decisions and outcomes come with every share, so they are served by the hot
path (:mod:`riskservice.api.hot_path`) rather than by Flask's dispatch:
:func:`answer_decision` and :func:`answer_outcome` are its handlers."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from flask import Blueprint, Response

from riskservice.api.body import json_object, validated
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.decisions.lifecycle import ChallengeResult, OutcomeRequest
from riskservice.decisions.request import validate_decision_request
from riskservice.rewards import RewardRequest
from riskservice.state import RiskState, risk_state

bp = Blueprint("decisions", __name__)


class Answer(NamedTuple):
    """A handler's answer: the JSON body, and the headers beside the content type."""

    body: Any
    headers: Mapping[str, str] = MappingProxyType({})

# Reason codes that differ from the name of the rule that emits them.
RULE_OF_CODE = {"external_channel_not_allowed": "external_channel"}


def answer_decision(state: RiskState, body: dict[str, object]) -> Answer:
    """``POST /v1/decisions``: decide a share (``body``: its parsed JSON), count what the decision did."""
    decision = state.engine.decide(validate_decision_request(body), body)
    m = state.metrics
    m.child(m.decisions, decision.decision, "true" if decision.degraded else "false").inc()
    for r in decision.reasons:
        m.child(m.rule_hits, r["code"], "enforced").inc()
    for r in decision.shadow:
        m.child(m.rule_hits, r["code"], "shadow").inc()
    if decision.degraded:
        m.child(m.redis_errors, "decide").inc()
    outage = state.engine.outage
    m.set_outage_pending(outage.pending())
    # take_dropped() locks; nothing is dropped unless Redis has been down a while.
    dropped = outage.take_dropped() if outage.dropped else 0
    if dropped:
        m.outage_dropped.inc(dropped)
    if state.store.wait_replicas:
        unreplicated = state.store.take_unreplicated()
        if unreplicated:
            m.unreplicated.inc(unreplicated)
    native = getattr(state.store, "native", None)
    if native is not None and native.fallbacks:
        m.native_fallbacks.inc(native.take_fallbacks())
    settles = getattr(state.store, "settles", None)  # Redis Cluster only
    if settles is not None:
        lost = settles.take_lost()
        if lost:
            m.user_writes_lost.inc(lost)
    if decision.arms:
        fired = {RULE_OF_CODE.get(r["code"], r["code"]) for r in (*decision.reasons, *decision.shadow)}
        for rule, arm in decision.arms.items():
            m.child(m.rollout_evaluations, rule, arm).inc()
            if rule in fired:
                m.child(m.rollout_hits, rule, arm).inc()
    headers = decision.headers
    if decision.replay:
        headers = {**headers, "Idempotent-Replayed": "true"}
    return Answer(decision.to_response(), headers)


def answer_outcome(state: RiskState, body: dict[str, object]) -> Answer:
    """``POST /v1/outcomes``: record whether an allowed share was delivered and claimed."""
    return Answer(state.lifecycle.outcome(validated(OutcomeRequest, body)))


@bp.post("/v1/challenges/<decision_id>")
@require("issuer")
def record_challenge(decision_id: str) -> Response:
    state = risk_state()
    result = validated(ChallengeResult, json_object())
    return json_response(state.lifecycle.challenge(decision_id, result))


@bp.post("/v1/rewards/check")
@require("issuer")
def check_reward() -> Response:
    state = risk_state()
    body = json_object()
    return json_response(state.rewards.check(validated(RewardRequest, body), body))
