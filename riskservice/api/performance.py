"""``GET /v1/rules/performance`` (role analyst): hits, refusals and precision per rule and signal."""

from __future__ import annotations

from typing import Any, Literal

import redis
from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict

from riskservice.api import params
from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.errors import StorageError
from riskservice.review.performance import DAY_MS, rule_performance
from riskservice.state import risk_state

bp = Blueprint("performance", __name__)

PARAMS = ("since", "until")


def report(q: dict[str, str]) -> dict[str, Any]:
    """The report for validated query parameters; by default the 24 h before ``until``, which defaults to now.

    "Now" is Redis server time, the clock of the stream's entry ids that the
    window is over (not the decision path's injected clock).
    """
    since, until = params.time_range(q)
    state = risk_state()
    client = state.store.client
    try:
        if until is None:
            sec, usec = client.time()
            until = max(int(sec) * 1000 + int(usec) // 1000 + 1, since or 0)
        if since is None:
            since = max(0, until - DAY_MS)
        return rule_performance(client, since_ms=since, until_ms=until, policy=state.policy)
    except redis.RedisError as exc:
        raise StorageError(f"cannot read the share events: {exc}") from exc


@bp.get("/v1/rules/performance")
@require("analyst")
def performance() -> Response:
    """Per rule and signal over ``[since, until)``: hits (enforced and shadow), refusals, precision."""
    return json_response(report(params.args(*PARAMS)))


class Precision(BaseModel):
    """Hits of one mode against analysts' labels (a share: its device's label, else its user's)."""

    model_config = ConfigDict(extra="forbid")

    labelled: int
    fraud: int
    legit: int
    precision: float | None
    labels: int
    fraud_labels: int
    interval: list[float] | None


class RuleHits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enforced: int
    shadow: int


class Refusals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int
    block: int
    challenge: int


class ModePrecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enforced: Precision
    shadow: Precision


class RulePerformance(BaseModel):
    """One rule or signal over the window."""

    model_config = ConfigDict(extra="forbid")

    code: str
    mode: Literal["enforced", "shadow", "disabled", "unknown"]
    rollout: int | None
    hits: RuleHits
    refusals: Refusals
    precision: ModePrecision
    series: dict[str, list[int]]


class LabelledCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: int
    users: int


class PerformanceReport(BaseModel):
    """``GET /v1/rules/performance``: every rule and signal, with ``series`` of hits per bucket."""

    model_config = ConfigDict(extra="forbid")

    since: int
    until: int
    decisions: int
    scanned: int
    truncated: bool
    scanned_until: int
    bucket_ms: int
    buckets: list[int]
    labelled: LabelledCount
    rules: list[RulePerformance]
