"""Response shapes, for the OpenAPI document and for tests that check answers against it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from riskservice.signals.heartbeat import ConsumerStatus


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
    # "degraded" (200): on Redis Cluster some master is down or slots have no
    # master, and the others serve; "unavailable" (503): no decision can be served.
    status: Literal["ready", "degraded", "unavailable"]
    # "degraded": on Redis Cluster, some master is down (``cluster`` says which).
    redis: Literal["ok", "unreachable", "degraded"]
    policy_version: str
    policy_error: str | None
    cluster: dict[str, Any] | None = None
    # Which path decisions take: {"path": "native" | "lua", "setting":
    # RISK_REDIS_NATIVE, "module_version": riskdecide's version on the server
    # or null}; on Redis Cluster "path" may be "mixed", and "masters" gives
    # each master's (docs/architecture.md, "The native decide (riskdecide)").
    decide: dict[str, Any]
    # The signal consumer's heartbeat, as /readyz reports it (docs/operations.md).
    signals: ConsumerStatus


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
    # A pass reported while a ban blocked the device counts nothing: the ban's
    # code (device_blocklist, or challenge_failures for a rule's cool-down).
    blocked_by: Literal["device_blocklist", "challenge_failures"] | None
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


class QueueItem(BaseModel):
    """One device of the review queue (``priority``) or of a resolved status (``resolved_at``)."""

    device_id: str
    status: Literal["open", "blocked", "allowlisted", "labelled"]
    label: Literal["fraud", "legit"] | None
    reasons: dict[str, int]
    points: int
    anomaly: float | None
    first_flagged: int | None
    last_seen: int | None
    priority: float | None = None
    resolved_at: int | None = None


class ReviewQueue(BaseModel):
    """``GET /v1/review/devices``: one page, worst first; follow ``next_cursor`` until null."""

    status: str
    total: int
    devices: list[QueueItem]
    next_cursor: str | None


class AuditEntry(BaseModel):
    """One entry of the audit trail; ``hash`` = sha256(prev + canonical JSON of the rest)."""

    seq: int
    at: int
    actor: str
    action: str
    entity: str
    reason: str
    details: dict[str, object]
    prev: str
    hash: str


class AuditPage(BaseModel):
    """``GET /v1/audit``: entries newest first."""

    entries: list[AuditEntry]
    next_cursor: str | None


class AuditBreak(BaseModel):
    seq: int
    problem: Literal["missing", "altered", "unlinked", "misnumbered", "head", "extra", "index"]
    message: str


class AuditVerification(BaseModel):
    """``GET /v1/audit/verify``: ``ok`` false names the first broken link."""

    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    anchor: dict[str, object] | None
    broken: AuditBreak | None


class Dossier(BaseModel):
    """``GET /v1/review/devices/<device_id>``: everything known about one device (times in epoch ms)."""

    device_id: str
    as_of: int
    status: Literal["open", "blocked", "allowlisted", "labelled"]
    # a rule's timed cool-down (repeated failed challenges) is in force: `ban` holds it,
    # and `status` stays what the analysts made it
    cooling_down: bool
    in_queue: bool
    priority: float | None
    review: dict[str, str]
    ban: dict[str, str] | None
    allowlist: dict[str, str] | None
    flags: dict[str, object]
    counters: dict[str, object]
    decisions: list[dict[str, object]]
    decisions_complete: bool
    users: list[dict[str, object]]
    scores: dict[str, object]
    history: list[AuditEntry]


class NeighbourhoodNode(BaseModel):
    id: str
    kind: Literal["user", "device"]
    hop: int
    parent: dict[str, str] | None
    live: bool
    kol: float | None
    anomaly: float | None


class NeighbourhoodEdge(BaseModel):
    source: str
    source_kind: Literal["user", "device"]
    target: str
    target_kind: Literal["user", "device"]
    kind: Literal["share", "device"]
    weight: float


class Neighbourhood(BaseModel):
    """``GET /v1/review/devices/<device_id>/graph``: the capped neighbourhood."""

    device_id: str
    hops: int
    version: int | None
    truncated: bool
    max_nodes: int
    nodes: list[NeighbourhoodNode]
    edges: list[NeighbourhoodEdge]


class ActionResult(BaseModel):
    """``POST /v1/review/devices/<device_id>/actions``: the device afterwards and the audit entry."""

    device_id: str
    action: str
    status: Literal["open", "blocked", "allowlisted", "labelled"]
    label: Literal["fraud", "legit"] | None
    blocked: bool
    allowlisted: bool
    audit: AuditEntry
