"""Response shapes, for the OpenAPI document and for tests that check answers against it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Reason(BaseModel):
    """One rule that fired."""

    model_config = ConfigDict(extra="forbid")

    code: str
    action: Literal["challenge", "block"]
    challenge: Literal["captcha", "sms"] | None
    message: str
    observed: int | float | str | None
    limit: int | float | None
    window_s: int | None
    retry_after_s: int | None


class Scores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risk: float
    anomaly: float | None
    kol: float | None


class DecisionResponse(BaseModel):
    """The answer to ``POST /v1/decisions``."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["allow", "challenge", "block"]
    challenge: Literal["captcha", "sms"] | None
    decision_id: str
    reasons: list[Reason]
    shadow: list[Reason]
    scores: Scores
    policy_version: str
    degraded: bool


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    fields: dict[str, str]


class ErrorResponse(BaseModel):
    """Every 4xx (and the rare 5xx) has this shape."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: Literal["ready", "unavailable"]
    redis: Literal["ok", "unreachable"]
    policy_version: str
    policy_error: str | None


class OutcomeResponse(BaseModel):
    """The answer to ``POST /v1/outcomes``."""

    decision_id: str
    delivered: int
    opened: int
    claimed: int
    success: bool
    replayed: bool


class ChallengeResponse(BaseModel):
    """The answer to ``POST /v1/challenges/<decision_id>``."""

    decision_id: str
    passed: bool
    counted: bool
    cooldown: bool
    replayed: bool


class PolicyStatus(BaseModel):
    """``GET /v1/policy``: the policy in force and every merchant's effective rules."""

    name: str
    version: str
    file: str
    loaded_at: float
    error: str | None
    rules: dict[str, dict[str, object]]
    merchants: dict[str, dict[str, dict[str, object]]]
    origins: dict[str, dict[str, dict[str, str]]]


class GraphNode(BaseModel):
    """One scored node of the share graph."""

    node: str
    kind: Literal["user", "device"]
    kol: float
    anomaly: float
    signals: list[dict[str, object]]


class GraphTop(BaseModel):
    """``GET /v1/graph/kol`` and ``/v1/graph/anomalies``: the latest version's top nodes."""

    version: int | None
    written_at: float | None
    nodes: list[GraphNode]


class RewardResponse(BaseModel):
    """The answer to ``POST /v1/rewards/check``."""

    decision: Literal["allow", "challenge", "block"]
    challenge: Literal["captcha", "sms"] | None
    reward_id: str
    reasons: list[Reason]
    amount_cents: int
    bonus_cents: int
    kol_tier: str | None
    reach: int
    anomaly: float | None
    replayed: bool
