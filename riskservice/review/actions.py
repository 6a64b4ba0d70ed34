"""Analyst actions on a device, each applied and then written to the audit trail.

- ``block``: ban the device (its very next decision is blocked with reason
  ``device_blocklist``), optionally for ``hours``; lifts an allowlist.
- ``unblock``: lift the ban.
- ``allowlist``: challenge rules no longer challenge the device (they are
  reported as shadow); blocks such as the daily caps still apply. Lifts a ban:
  an analyst who trusts the device no longer wants it blocked.
- ``label``: ``fraud`` or ``legit``, exported with the device's share events
  for the batch job.
- ``flag``: put the device (back) in the open queue by hand; withdraws an
  allowlist and a label, since the device is under review again. A blocked
  device must be unblocked first: a block stays until lifted explicitly.

The device's status follows from what is in force: ``blocked`` (a ban),
else ``allowlisted``, else ``labelled``, else ``open``. Only an open device
is in the queue; the decision path re-queues a device only while it is open.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskservice.decisions.request import ID_PATTERN
from riskservice.errors import Conflict
from riskservice.limits.keys import REVIEW_QUEUE, device_tag
from riskservice.limits.store import RedisStore
from riskservice.review import audit
from riskservice.review.common import decode_hash
from riskservice.review.queue import STATUSES, status_key

Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=ID_PATTERN)]


class ActionRequest(BaseModel):
    """``POST /v1/review/devices/<device_id>/actions``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["block", "unblock", "allowlist", "label", "flag"]
    reason: Reason = Field(description="Why: kept in the audit trail (and shown in blocked decisions).")
    label: Literal["fraud", "legit"] | None = Field(None, description="Required with action label.")
    hours: float | None = Field(None, gt=0, le=24 * 365, description="Block only: lift the ban after this long.")

    @model_validator(mode="after")
    def _fields_match_action(self) -> ActionRequest:
        if self.action == "label" and self.label is None:
            raise ValueError("label: required with action label (fraud or legit)")
        if self.action != "label" and self.label is not None:
            raise ValueError("label: only allowed with action label")
        if self.action != "block" and self.hours is not None:
            raise ValueError("hours: only allowed with action block")
        return self


def derive_status(banned: bool, allowlisted: bool, label: str | None) -> str:
    """A device's review status from what is in force."""
    if banned:
        return "blocked"
    if allowlisted:
        return "allowlisted"
    return "labelled" if label else "open"


def apply(client: redis.Redis, store: RedisStore, device_id: str, req: ActionRequest, *, actor: str,
          now_ms: int) -> dict[str, Any]:
    """Carry out one action, update the queue and audit it; returns the outcome and the audit entry."""
    tag = device_tag(device_id)
    review = decode_hash(client.hgetall(f"{tag}:review"))
    banned = store.get_ban("device", device_id) is not None
    allowlisted = bool(client.exists(f"{tag}:allow"))
    label = review.get("label")
    before = derive_status(banned, allowlisted, label)
    details: dict[str, Any] = {}
    review_fields: dict[str, str | int] = {"updated_at": now_ms, "updated_by": actor}
    drop_fields: list[str] = []
    pipe = client.pipeline(transaction=True)

    if req.action == "block":
        until = now_ms + round(req.hours * 3_600_000) if req.hours else 0
        # The ban is what the decision script reads: it applies from the very next decision.
        store.set_ban("device", device_id, reason=req.reason, actor=actor, until_ms=until)
        details.update(until=until or None, lifted_allowlist=allowlisted)
        pipe.delete(f"{tag}:allow")
        banned, allowlisted = True, False
    elif req.action == "unblock":
        if not banned:
            raise Conflict(f"device {device_id} is not blocked", {"action": "nothing to unblock"})
        store.clear_ban("device", device_id)
        banned = False
    elif req.action == "allowlist":
        pipe.hset(f"{tag}:allow", mapping={"reason": req.reason, "actor": actor, "at": now_ms})
        if banned:
            store.clear_ban("device", device_id)
        details.update(lifted_ban=banned)
        banned, allowlisted = False, True
    elif req.action == "label":
        assert req.label is not None
        review_fields.update(label=req.label, label_reason=req.reason, label_by=actor, label_at=now_ms)
        details.update(label=req.label, previous_label=label)
        label = req.label
    else:  # flag
        if banned:
            raise Conflict(f"device {device_id} is blocked: unblock it before flagging it for review",
                           {"action": "device is blocked"})
        pipe.delete(f"{tag}:allow")
        pipe.hincrby(f"{tag}:flags", "manual", 1)
        pipe.pexpire(f"{tag}:flags", 30 * 86_400_000)
        drop_fields = ["label", "label_reason", "label_by", "label_at"]
        details.update(lifted_allowlist=allowlisted, withdrawn_label=label)
        allowlisted, label = False, None

    after = derive_status(banned, allowlisted, label)
    review_fields["status"] = after
    pipe.hset(f"{tag}:review", mapping=review_fields)  # type: ignore[arg-type]
    if drop_fields:
        pipe.hdel(f"{tag}:review", *drop_fields)
    for status in STATUSES:
        if status != after:
            pipe.zrem(status_key(status), device_id)
    if after == "open":
        pipe.zadd(REVIEW_QUEUE, {device_id: _priority(client, tag)}, gt=True)
    else:
        pipe.zadd(status_key(after), {device_id: now_ms})
    pipe.execute()
    details.update(status_from=before, status_to=after)
    entry = audit.append(client, now_ms=now_ms, actor=actor, action=req.action, entity=f"device:{device_id}",
                         reason=req.reason, details=details)
    return {"device_id": device_id, "action": req.action, "status": after, "label": label,
            "blocked": banned, "allowlisted": allowlisted, "audit": entry}


def _priority(client: redis.Redis, tag: str) -> float:
    """Queue priority of a device put (back) in the queue: its evidence, at least 1."""
    points, anomaly = cast(list[bytes | None], client.hmget(f"{tag}:flags", "_points", "_anomaly"))
    return max(1.0, float(points or 0), round(10 * float(anomaly or 0), 2))
