"""What the signals read from the share-event stream: shares and their outcomes.

The decision script appends one ``decision`` entry per share (the request as
JSON under ``req``), the outcome script one ``outcome`` entry per report
(counts only, under the decision id), and the challenge script ``challenge``
entries, which no signal needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Outcome", "Share", "parse_entry"]


@dataclass(frozen=True, slots=True)
class Share:
    """One decided share (allowed or not: an attempt is evidence too)."""

    decision_id: str
    t_ms: int
    user: str
    device: str
    coupon: str
    recipients: tuple[str, ...]
    allowed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """A share's reported outcome: recipients it reached and who claimed."""

    decision_id: str
    t_ms: int
    delivered: int
    claimed: int


def parse_entry(fields: dict[str, str]) -> Share | Outcome | None:
    """A stream entry (decoded field -> value) as a :class:`Share` or
    :class:`Outcome`; None for entries no signal reads.

    >>> parse_entry({"k": "outcome", "id": "x1", "t": "5", "dl": "3", "op": "2", "cl": "1"})
    Outcome(decision_id='x1', t_ms=5, delivered=3, claimed=1)
    """
    kind = fields.get("k")
    if kind == "outcome":
        return Outcome(fields["id"], int(fields["t"]), int(fields["dl"]), int(fields["cl"]))
    if kind != "decision":
        return None
    req: dict[str, Any] = orjson.loads(fields["req"])
    recipients = dict.fromkeys(str(r) for r in req.get("recipients") or ())  # distinct, in order
    return Share(fields["id"], int(fields["t"]), str(req.get("user_id", "")), str(req.get("device_id", "")),
                 str(req.get("coupon_id", "")), tuple(recipients), fields.get("dec") == "0")
