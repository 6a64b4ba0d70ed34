"""Response models of the case API (for the OpenAPI document; the views build plain dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from riskservice.api.schemas import AuditEntry

__all__ = ["CaseActionResult", "CaseDetail", "CasePage", "CaseSummary"]

Kind = Literal["user", "device"]


class CaseMember(BaseModel):
    """A member with its own scores (the node ids and kinds of ``scores.jsonl``)."""

    node: str
    kind: Kind
    anomaly: float
    kol: float


class CaseResolution(BaseModel):
    action: Literal["block", "allowlist", "label", "dismiss"]
    label: Literal["fraud", "legit"] | None
    reason: str
    actor: str
    at: int
    audit_seq: int
    version: int | None


class CaseSummary(BaseModel):
    """One case as listed: what ties it (``kind``), how bad (``score``), a one-line ``summary``."""

    case_id: str
    kind: Literal["farm", "star", "hoarder", "ring", "lockstep", "linked"]
    score: float
    summary: str
    members: list[CaseMember]
    members_digest: str
    stats: dict[str, int]
    version: int
    opened_version: int
    previous_case: str | None
    status: Literal["open", "resolved"]
    resolution: CaseResolution | None = None


class CasePage(BaseModel):
    """``GET /v1/review/cases``: one page; follow ``next_cursor`` until null."""

    cases: list[CaseSummary]
    next_cursor: str | None


class EvidenceEdge(BaseModel):
    """A tie: ``share`` (with ``coupon`` and ``ts``), ``device`` (``shares``, ``first_ts``, ``last_ts``) or
    ``lockstep``."""

    kind: Literal["share", "device", "lockstep"]
    source: str
    source_kind: Kind
    target: str
    target_kind: Kind
    coupon: str | None = None
    ts: int | None = None
    shares: int | None = None
    first_ts: int | None = None
    last_ts: int | None = None


class Evidence(BaseModel):
    edges: list[EvidenceEdge]
    total: int
    truncated: bool


class SubgraphNode(BaseModel):
    id: str
    kind: Kind
    anomaly: float
    kol: float


class SubgraphEdge(BaseModel):
    source: str
    source_kind: Kind
    target: str
    target_kind: Kind
    kind: Literal["share", "device", "lockstep"]
    weight: float


class Subgraph(BaseModel):
    nodes: list[SubgraphNode]
    edges: list[SubgraphEdge]
    truncated: bool


class CaseDetail(CaseSummary):
    """``GET /v1/review/cases/<case_id>``: the case, its evidence and its subgraph (both capped)."""

    in_current_version: bool
    evidence: Evidence
    subgraph: Subgraph


class CaseActionResult(BaseModel):
    """``POST /v1/review/cases/<case_id>/actions``: every member's status before and after, the audit entry."""

    case_id: str
    action: str
    status: Literal["resolved"]
    resolution: CaseResolution
    members: list[dict[str, object]]  # {"node", "kind", "from", "to"}: statuses before and after
    audit: AuditEntry
