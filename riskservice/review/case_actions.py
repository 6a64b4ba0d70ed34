"""Bulk actions on a case: every member device and user in one transaction, one audit entry.

- ``block``: ban every member device (as the device action does) and every
  member user (``risk:{u:<user>}:ban``): the next decision of any of them is
  blocked;
- ``allowlist``: allow-list every member device and lift bans of member
  devices and users;
- ``label``: label every member ``fraud`` or ``legit`` (devices as the device
  action does; users in ``risk:{u:<user>}:review``);
- ``dismiss``: close the case without touching its members.

The action resolves the case. It is refused (409) on a resolved case, and on
a case whose members changed since the analyst loaded it (``members`` in the
request, or ``members_digest`` for a case of more than 300 members): an
action never reaches an account the analyst did not see, and never misses
one they did. The member keys, the case state, the current
score version and the audit head are all watched, so two bulk actions on
overlapping cases run one after the other, each on fresh state.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import orjson
import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskservice.cases import store
from riskservice.cases.match import member_keys, members_digest
from riskservice.decisions.request import ID_PATTERN
from riskservice.errors import Conflict, NotFound, NotSupported
from riskservice.graph_store import CURRENT
from riskservice.limits.keys import ban_key, user_review_key
from riskservice.limits.topology import is_cluster
from riskservice.review import actions, audit
from riskservice.review.actions import ActionRequest, Reason
from riskservice.review.common import ban_in_force, decode_hash, text
from riskservice.transactions import optimistic

__all__ = ["CaseActionRequest", "LoadedMember", "apply"]

# Sent back whole, a member list must fit in a request body (64 KB by default, 128-character ids):
# a larger case is acted on with its members_digest instead.
MAX_MEMBERS = 300


class LoadedMember(BaseModel):
    """A member as the analyst saw it: ``{"node", "kind"}``."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    node: str = Field(min_length=1, max_length=128, pattern=ID_PATTERN)
    kind: Literal["user", "device"]


class CaseActionRequest(BaseModel):
    """``POST /v1/review/cases/<case_id>/actions``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["block", "allowlist", "label", "dismiss"]
    reason: Reason = Field(description="Why: kept in the audit trail (and shown in blocked decisions).")
    label: Literal["fraud", "legit"] | None = Field(None, description="Required with action label.")
    members: list[LoadedMember] | None = Field(
        None, max_length=MAX_MEMBERS,
        description="The members the analyst loaded; the action is refused (409) if the case's members differ.")
    members_digest: str | None = Field(
        None, pattern=r"^[0-9a-f]{16}$",
        description="Instead of members (a case of more than 300): the members_digest of the case as loaded.")

    @model_validator(mode="after")
    def _label_with_label(self) -> CaseActionRequest:
        if self.action == "label" and self.label is None:
            raise ValueError("label: required with action label (fraud or legit)")
        if self.action != "label" and self.label is not None:
            raise ValueError("label: only allowed with action label")
        if self.members is not None and self.members_digest is not None:
            raise ValueError("members_digest: give members or members_digest, not both")
        return self


def _user_keys(user: str) -> tuple[str, str]:
    return ban_key("user", user), user_review_key(user)


class _UserPlan:
    """One member user's writes: a ban, its lifting, or a label, and the status that follows."""

    def __init__(self, pipe: Any, user: str, req: CaseActionRequest, actor: str, now_ms: int) -> None:
        self.user, self.req, self.actor, self.now_ms = user, req, actor, now_ms
        ban, review_key = _user_keys(user)
        review = decode_hash(pipe.hgetall(review_key))
        self.banned = ban_in_force(decode_hash(pipe.hgetall(ban)), now_ms)
        self.before = "blocked" if self.banned else review.get("status", "open")
        self.after = {"block": "blocked", "allowlist": "allowlisted",
                      "label": "blocked" if self.banned else "labelled"}.get(req.action, self.before)

    def write(self, pipe: Any) -> None:
        ban, review_key = _user_keys(self.user)
        fields: dict[str, str | int] = {"status": self.after, "updated_at": self.now_ms, "updated_by": self.actor}
        if self.req.action == "block":
            # What the decision script reads: the user's very next share is blocked.
            pipe.delete(ban)
            pipe.hset(ban, mapping={"reason": self.req.reason, "actor": self.actor, "at": self.now_ms, "until": 0})
        elif self.req.action == "allowlist":
            pipe.delete(ban)
        elif self.req.action == "label":
            assert self.req.label is not None
            fields.update(label=self.req.label, label_reason=self.req.reason, label_by=self.actor,
                          label_at=self.now_ms)
        pipe.hset(review_key, mapping=fields)


def _changed(loaded: list[LoadedMember], current: frozenset[str]) -> dict[str, str] | None:
    """What differs between the members the analyst loaded and the case's (None: nothing)."""
    seen = frozenset(f"{m.kind}:{m.node}" for m in loaded)
    left, joined = sorted(seen - current), sorted(current - seen)
    if not left and not joined:
        return None
    parts = []
    if left:
        parts.append("left the case since it was loaded: " + ", ".join(left[:20]) + (" …" if len(left) > 20 else ""))
    if joined:
        parts.append("joined the case since it was loaded: " + ", ".join(joined[:20])
                     + (" …" if len(joined) > 20 else ""))
    return {"members": "; ".join(parts)}


def apply(client: redis.Redis | redis.RedisCluster, case_id: str, req: CaseActionRequest, *, actor: str,
          now_ms: int) -> dict[str, Any]:
    """Carry out a bulk action on a case and resolve it; returns the members' statuses and the audit entry.

    Raises
    ------
    NotFound
        The current score version has no such case (and it was never resolved).
    Conflict
        The case is resolved already, or its members changed since the analyst loaded them.
    NotSupported
        On Redis Cluster: the members' keys live in many slots, which one
        transaction cannot span.
    """
    if is_cluster(client):
        raise NotSupported("bulk case actions need a single Redis: on Redis Cluster act on each member "
                           "device (POST /v1/review/devices/<device_id>/actions) and ban member users with "
                           "the command line (python -m riskservice ban user <user_id> --reason ...)")
    single = cast(redis.Redis, client)

    def act(pipe: Any) -> dict[str, Any]:
        raw_version = text(pipe.get(CURRENT))
        version = int(raw_version) if raw_version else None
        resolved = store.state(pipe, case_id)
        if resolved is not None:
            r = resolved["resolution"]
            raise Conflict(f"case {case_id} is already resolved ({r['action']} by {r['actor']})",
                           {"case_id": "already resolved"})
        case = store.card(pipe, version, case_id)
        if case is None:
            raise NotFound(f"no case {case_id!r} in the current scores", {"case_id": "unknown"})
        if req.members is not None and (changed := _changed(req.members, member_keys(case["members"]))):
            raise Conflict(f"the members of case {case_id} changed since they were loaded", changed)
        if req.members_digest is not None and req.members_digest != members_digest(case["members"]):
            raise Conflict(f"the members of case {case_id} changed since they were loaded: reload it to see who",
                           {"members_digest": f"the case has {len(case['members'])} members now, not the ones loaded"})
        devices = [m["node"] for m in case["members"] if m["kind"] == "device"]
        users = [m["node"] for m in case["members"] if m["kind"] == "user"]
        # The card is fixed for its version (CURRENT is watched); the members' keys are watched from here on.
        keys = [k for d in devices for k in actions.device_keys(d)] + [k for u in users for k in _user_keys(u)]
        if keys:
            pipe.watch(*keys)
        touched = req.action != "dismiss"
        plans, user_plans = [], []
        if touched:
            device_req = ActionRequest(action=cast(Any, req.action), reason=req.reason, label=req.label)
            plans = [actions.plan_device(pipe, d, device_req, actor=actor, now_ms=now_ms) for d in devices]
            user_plans = [_UserPlan(pipe, u, req, actor, now_ms) for u in users]
        outcome: list[dict[str, Any]] = (
            [{"node": p.device_id, "kind": "device", "from": p.before, "to": p.after} for p in plans]
            + [{"node": p.user, "kind": "user", "from": p.before, "to": p.after} for p in user_plans])
        if not touched:
            outcome = [{"node": m["node"], "kind": m["kind"], "from": None, "to": None} for m in case["members"]]
        details = {"case_id": case_id, "version": version, "kind": case["kind"], "label": req.label,
                   "members": outcome}
        entry = audit.next_entry(pipe, now_ms, actor, req.action, f"case:{case_id}", req.reason, details)
        resolution = {"action": req.action, "label": req.label, "reason": req.reason, "actor": actor,
                      "at": entry["at"], "audit_seq": entry["seq"], "version": version}
        pipe.multi()
        for plan in plans:
            plan.write(pipe, 1.0)  # none of these actions leaves a device open: no queue priority needed
        for user_plan in user_plans:
            user_plan.write(pipe)
        audit.write_entry(pipe, entry)
        pipe.hset(store.STATE, case_id, orjson.dumps({"resolution": resolution, "card": case}))
        pipe.zadd(store.RESOLVED, {case_id: entry["at"]})
        return {"case_id": case_id, "action": req.action, "status": "resolved", "resolution": resolution,
                "members": outcome, "audit": entry}

    result = optimistic(single, (CURRENT, store.STATE, audit.HEAD, audit.ANCHOR), act)
    audit.trim_older(single, now_ms)
    return result
