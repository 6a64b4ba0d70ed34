"""Analyst actions on a device, each applied and then written to the audit trail.

- ``block``: ban the device (its very next decision is blocked with reason
  ``device_blocklist``, and a challenge of an earlier decision passed while
  the ban is in force counts nothing), optionally for ``hours``; lifts an
  allowlist.
- ``unblock``: lift the ban.
- ``allowlist``: challenge rules no longer challenge the device (they are
  reported as shadow); blocks such as the daily caps still apply. Lifts a ban:
  an analyst who trusts the device no longer wants it blocked.
- ``label``: ``fraud`` or ``legit``, exported with the device's share events
  for the batch job.
- ``flag``: put the device (back) in the open queue by hand; withdraws an
  allowlist and a label, since the device is under review again. A blocked
  device must be unblocked first: a block stays until lifted explicitly.

On Redis Cluster the audit trail and the device's keys are in different
slots, so they cannot share a transaction. There the audit entry is written
first, as the intent (with the writes it stands for in its details), and the
action is then applied in one transaction on the device's slot (its keys and
its shard of the queue and status lists), recording the entry's ``seq`` in
the device's review hash. Applying is idempotent (it sets values, never
increments), and an action whose entry is older than the one already applied
is skipped, so concurrent actions end in the state of the newest entry. If
the process dies between the two steps, the entry is in the trail without its
action: verification reports it (``unapplied``), and repeating the action
applies it.

The device's status follows from what is in force: ``blocked`` (a ban),
else ``allowlisted``, else ``labelled``, else ``open``. Only an open device
is in the queue; the decision path re-queues a device only while it is open.
A ban with ``hours`` ends by itself; the review reads then move the device
out of the ``blocked`` list (``review/ban_ends.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskservice.decisions.request import ID_PATTERN
from riskservice.errors import Conflict
from riskservice.limits.keys import REVIEW_BAN_ENDS, ban_key, device_shard, device_tag
from riskservice.limits.topology import is_cluster, node_client
from riskservice.review import audit
from riskservice.review.common import blocked_by_hand, cooling_down, decode_hash
from riskservice.review.queue import STATUSES, status_key
from riskservice.transactions import optimistic

Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=ID_PATTERN)]


class ActionRequest(BaseModel):
    """``POST /v1/review/devices/<device_id>/actions``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["block", "unblock", "allowlist", "label", "flag"]
    reason: Reason = Field(description="Why: kept in the audit trail (and shown in blocked decisions).")
    label: Literal["fraud", "legit"] | None = Field(None, description="Required with action label.")
    # (at least a second: a shorter ban would have ended before the answer)
    hours: float | None = Field(None, ge=1 / 3600, le=24 * 365,
                                description="Block only: lift the ban after this long (a second at least).")

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


def apply(client: redis.Redis, device_id: str, req: ActionRequest, *, actor: str,
          now_ms: int) -> dict[str, Any]:
    """Carry out one action, update the queue and audit it; returns the outcome and the audit entry.

    The action and its audit entry are one transaction: an action is never in
    force without its entry, nor the entry without the action. The device's
    keys and the trail's head are watched, so a concurrent action on the same
    device, or another entry, makes this one start over on fresh state.
    """
    if is_cluster(client):
        return _apply_on_cluster(cast(redis.RedisCluster, client), device_id, req, actor=actor, now_ms=now_ms)

    def act(pipe: Any) -> tuple[_Plan, dict[str, Any]]:
        plan = _plan(pipe, device_id, req, actor=actor, now_ms=now_ms)
        priority = _priority(pipe, device_tag(device_id))
        entry = audit.next_entry(pipe, now_ms, actor, req.action, f"device:{device_id}", req.reason, plan.details)
        pipe.multi()
        plan.write(pipe, priority)
        audit.write_entry(pipe, entry)
        return plan, entry

    plan, entry = optimistic(client, (audit.HEAD, audit.ANCHOR, *device_keys(device_id)), act)
    audit.trim_older(client, now_ms)
    return _result(device_id, req, plan, entry)


def _result(device_id: str, req: ActionRequest, plan: _Plan, entry: dict[str, Any]) -> dict[str, Any]:
    return {"device_id": device_id, "action": req.action, "status": plan.after, "label": plan.label,
            "blocked": plan.banned, "allowlisted": plan.allowlisted, "audit": entry}


def device_keys(device_id: str) -> tuple[str, str, str]:
    """The keys an action on the device reads and writes (to WATCH): ban, allowlist, review."""
    tag = device_tag(device_id)
    return ban_key("device", device_id), f"{tag}:allow", f"{tag}:review"


def plan_device(pipe: Any, device_id: str, req: ActionRequest, *, actor: str, now_ms: int) -> _Plan:
    """An action's writes on one device, read under WATCH (case actions plan each member device
    with it, then write them all in one transaction)."""
    return _plan(pipe, device_id, req, actor=actor, now_ms=now_ms)


def queue_priority(pipe: Any, device_id: str) -> float:
    """The queue priority a device put back in the open queue gets."""
    return _priority(pipe, device_tag(device_id))


def _apply_on_cluster(client: redis.RedisCluster, device_id: str, req: ActionRequest, *, actor: str,
                      now_ms: int) -> dict[str, Any]:
    """The intent (audit entry) first, then the action on the device's slot (see the module docstring)."""
    tag = device_tag(device_id)
    device = node_client(client, tag)
    review_key = f"{tag}:review"
    plan = _plan(device, device_id, req, actor=actor, now_ms=now_ms)  # a Conflict writes nothing
    entry = audit.append(client, now_ms=now_ms, actor=actor, action=req.action, entity=f"device:{device_id}",
                         reason=req.reason, details=plan.details)

    def act(pipe: Any) -> None:
        applied = pipe.hget(review_key, "audit_seq")
        priority = _priority(pipe, tag)
        pipe.multi()
        if applied is not None and int(applied) > entry["seq"]:
            return  # a newer action is in force
        plan.write(pipe, priority, lambda status: device_shard(status_key(status), device_id),
                   device_shard(REVIEW_BAN_ENDS, device_id))
        pipe.hset(review_key, "audit_seq", entry["seq"])

    optimistic(device, (review_key, ban_key("device", device_id), f"{tag}:allow"), act)
    return _result(device_id, req, plan, entry)


class _Plan:
    """What one action writes, worked out from the device's current state."""

    def __init__(self, device_id: str, req: ActionRequest, actor: str, now_ms: int, banned: bool,
                 allowlisted: bool, label: str | None) -> None:
        self.device_id, self.req, self.actor, self.now_ms = device_id, req, actor, now_ms
        self.tag = device_tag(device_id)
        self.before = derive_status(banned, allowlisted, label)
        self.banned, self.allowlisted, self.label = banned, allowlisted, label
        self.details: dict[str, Any] = {}
        self.ban: dict[str, str | int] | None = None  # new ban fields
        self.lift_ban = self.lift_allow = False
        self.allow: dict[str, str | int] | None = None
        self.review_fields: dict[str, str | int] = {"updated_at": now_ms, "updated_by": actor}
        self.drop_fields: list[str] = []
        self.flag = False

    @property
    def after(self) -> str:
        return derive_status(self.banned, self.allowlisted, self.label)

    def write(self, pipe: Any, priority: float, list_key: Callable[[str], str] = status_key,
              ends_key: str = REVIEW_BAN_ENDS) -> None:
        """Queue the writes; ``list_key`` names a status's list and ``ends_key`` the
        index of timed bans' ends (shards on Redis Cluster)."""
        tag, device_id, now_ms = self.tag, self.device_id, self.now_ms
        ban = ban_key("device", device_id)
        if self.lift_ban or self.ban is not None:
            pipe.delete(ban)
        if self.ban is not None:
            # What the decision script reads: it applies from the very next decision.
            pipe.hset(ban, mapping=self.ban)
            if self.ban["until"]:
                # Collected a day late: the script judges `until` itself.
                pipe.pexpireat(ban, int(self.ban["until"]) + 86_400_000)
        if self.ban is not None and self.ban["until"]:
            # Nothing runs when the ban ends: the review reads settle it from here (review/ban_ends.py).
            pipe.zadd(ends_key, {device_id: int(self.ban["until"])})
        elif self.ban is not None or not self.banned:
            pipe.zrem(ends_key, device_id)  # no timed ban of an analyst's is in force after this action
        if self.lift_allow:
            pipe.delete(f"{tag}:allow")
        if self.allow is not None:
            pipe.hset(f"{tag}:allow", mapping=self.allow)
        if self.flag:
            pipe.hincrby(f"{tag}:flags", "manual", 1)
            pipe.pexpire(f"{tag}:flags", 30 * 86_400_000)
        after = self.after
        pipe.hset(f"{tag}:review", mapping={**self.review_fields, "status": after})
        if self.drop_fields:
            pipe.hdel(f"{tag}:review", *self.drop_fields)
        for status in STATUSES:
            if status != after:
                pipe.zrem(list_key(status), device_id)
        if after == "open":
            pipe.zadd(list_key("open"), {device_id: priority}, gt=True)
        else:
            pipe.zadd(list_key(after), {device_id: now_ms})


def _plan(pipe: Any, device_id: str, req: ActionRequest, *, actor: str, now_ms: int) -> _Plan:
    """Read the device's state (under WATCH) and work out the action's writes."""
    tag = device_tag(device_id)
    review = decode_hash(pipe.hgetall(f"{tag}:review"))
    ban = decode_hash(pipe.hgetall(ban_key("device", device_id)))
    # (a rule's cool-down is a ban in force but no analyst's block: it leaves
    # the status alone, a block replaces it, an unblock or allowlist lifts it)
    banned, cooling = blocked_by_hand(ban, now_ms), cooling_down(ban, now_ms)
    allowlisted = bool(pipe.exists(f"{tag}:allow"))
    plan = _Plan(device_id, req, actor, now_ms, banned, allowlisted, review.get("label"))
    details = plan.details
    if req.action == "block":
        until = now_ms + round(req.hours * 3_600_000) if req.hours else 0
        if cooling and until and until < int(ban.get("until") or 0):
            # (a block replaces the cool-down: one ending sooner would free the device early)
            raise Conflict(f"device {device_id} is cooling down until {ban['until']} (ms); a block ending "
                           "sooner would lift it early: block for longer or without hours",
                           {"hours": "ends before the cool-down in force"})
        plan.ban = {"reason": req.reason, "actor": actor, "at": now_ms, "until": until}
        plan.lift_allow = allowlisted
        details.update(until=until or None, lifted_allowlist=allowlisted, replaced_cooldown=cooling)
        plan.banned, plan.allowlisted = True, False
    elif req.action == "unblock":
        if not banned and not cooling:
            raise Conflict(f"device {device_id} is not blocked", {"action": "nothing to unblock"})
        plan.lift_ban, plan.banned = True, False
        details.update(lifted_cooldown=cooling)
    elif req.action == "allowlist":
        plan.allow = {"reason": req.reason, "actor": actor, "at": now_ms}
        plan.lift_ban = banned or cooling
        details.update(lifted_ban=banned, lifted_cooldown=cooling)
        plan.banned, plan.allowlisted = False, True
    elif req.action == "label":
        assert req.label is not None
        plan.review_fields.update(label=req.label, label_reason=req.reason, label_by=actor, label_at=now_ms)
        details.update(label=req.label, previous_label=plan.label)
        plan.label = req.label
    else:  # flag
        if banned:
            raise Conflict(f"device {device_id} is blocked: unblock it before flagging it for review",
                           {"action": "device is blocked"})
        plan.lift_allow, plan.flag = True, True
        plan.drop_fields = ["label", "label_reason", "label_by", "label_at"]
        details.update(lifted_allowlist=allowlisted, withdrawn_label=plan.label)
        plan.allowlisted, plan.label = False, None
    details.update(status_from=plan.before, status_to=plan.after)
    return plan


def _priority(client: Any, tag: str) -> float:
    """Queue priority of a device put (back) in the queue: its evidence, at least 1."""
    points, anomaly = cast(list[bytes | None], client.hmget(f"{tag}:flags", "_points", "_anomaly"))
    return max(1.0, float(points or 0), round(10 * float(anomaly or 0), 2))
