"""The case review service: list, open and act on cases (what the API and console ask of Redis).

A case is listed with ``case_id``, ``kind``, ``score``, ``summary``,
``members`` (``{"node", "kind", "anomaly", "kol"}``), ``stats``, ``status``
(``open`` or ``resolved``) and, when resolved, its ``resolution``. The page
of a case adds its ``evidence`` and ``subgraph`` (capped, with
``truncated``) as the current score version holds them. Every Redis error
comes out as :class:`riskservice.errors.StorageError` (one 503 shape).
"""

from __future__ import annotations

from typing import Any

from riskservice.cases import store
from riskservice.errors import InvalidParameter, NotFound
from riskservice.graph_store import current_version
from riskservice.review import case_actions
from riskservice.review.common import decode_cursor, encode_cursor
from riskservice.review.service import ReviewService, _storage

__all__ = ["STATUSES", "CaseReview"]

STATUSES = ("open", "resolved")
EMPTY_EVIDENCE = {"edges": [], "total": 0, "truncated": False}
EMPTY_SUBGRAPH = {"nodes": [], "edges": [], "truncated": False}


def _cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    score, case_id = decode_cursor(cursor, 2)
    if isinstance(score, bool) or not isinstance(score, int | float) or not isinstance(case_id, str):
        raise InvalidParameter("cursor is not one this API returned", {"cursor": "invalid"})
    return float(score), case_id


class CaseReview:
    """Case operations over the review service's Redis and clock."""

    def __init__(self, review: ReviewService) -> None:
        self.review = review
        self.client = review.client

    def list(self, *, status: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """A page of open cases (worst first) or resolved ones (newest resolution first)."""
        after = _cursor(cursor)
        with _storage("list the cases"):
            if status == "open":
                page, last = store.list_open(self.client, current_version(self.client), limit, after)
            else:
                page, last = store.list_resolved(self.client, limit, after)
        return {"cases": page, "next_cursor": encode_cursor(*last) if last else None}

    def get(self, case_id: str) -> dict[str, Any]:
        """A case with its members, evidence and subgraph; 404 when no version or resolution knows it."""
        with _storage("read the case"):
            version = current_version(self.client)
            card = store.card(self.client, version, case_id)
            state = store.state(self.client, case_id)
            detail = store.detail(self.client, version, case_id) if card is not None and version else None
        if card is None and state is None:
            raise NotFound(f"no case {case_id!r}", {"case_id": "unknown"})
        body: dict[str, Any] = dict(card if card is not None else state["card"])  # type: ignore[index]
        body["status"] = "resolved" if state else "open"
        if state:
            body["resolution"] = state["resolution"]
        body["in_current_version"] = card is not None
        body["evidence"] = (detail or {}).get("evidence", EMPTY_EVIDENCE)
        body["subgraph"] = (detail or {}).get("subgraph", EMPTY_SUBGRAPH)
        return body

    def act(self, case_id: str, req: case_actions.CaseActionRequest, *, actor: str) -> dict[str, Any]:
        """A bulk action on every member and its audit entry, in one transaction."""
        now = self.review.now_ms()
        with _storage("apply the case action"):
            return case_actions.apply(self.client, case_id, req, actor=actor, now_ms=now)
