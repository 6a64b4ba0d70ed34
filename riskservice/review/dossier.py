"""A device's dossier: everything an analyst needs to decide about it, from Redis.

Recent decisions come from the share-event stream read backwards, at most
``EVENT_SCAN`` entries: a per-device list of decision ids would need the
decision script to write it, and the stream already holds every decision with
its reasons. The cost is bounded whatever the traffic; the price is that a
device quiet for the last ``EVENT_SCAN`` events shows none (``complete``
says whether the scan reached the start of the stream).
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis

from riskservice.errors import NotFound
from riskservice.events import DECISIONS
from riskservice.graph_store import current_version, node_fields
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import EVENTS, REVIEW_QUEUE, device_shard, device_tag, logged_decision_id, user_tag
from riskservice.limits.records import decode_device_state, decode_log
from riskservice.limits.sliding import in_window
from riskservice.limits.store import RedisStore
from riskservice.limits.topology import is_cluster
from riskservice.policy.load import Policy
from riskservice.review import audit
from riskservice.review.actions import derive_status
from riskservice.review.common import ban_in_force, blocked_by_hand, cooling_down, decode_hash
from riskservice.review.queue import last_seen, reasons_of

EVENT_SCAN = 5000
RECENT = 20
OUTCOME_BYTES = 11  # 6-byte ms, success byte, 4-byte tag (limits/lua/outcome.lua)


def device_known(client: redis.Redis, device_id: str) -> bool:
    """Whether the service has anything about the device (decisions, flags, review, scores)."""
    tag = device_tag(device_id)
    if client.exists(*(f"{tag}:{part}" for part in ("state", "flags", "review", "ban", "allow", "outcomes"))):
        return True
    version = current_version(client)
    return version is not None and node_fields(client, version, "rows", [f"device:{device_id}"])[0] is not None


def require_known(client: redis.Redis, device_id: str) -> None:
    """404 for a device the service knows nothing about."""
    if not device_known(client, device_id):
        raise NotFound(f"no device {device_id!r}: it never shared, was never flagged and has no scores",
                       {"device_id": "unknown device"})


def build(client: redis.Redis, store: RedisStore | ClusterStore, policy: Policy, device_id: str,
          now_ms: int) -> dict[str, Any]:
    """The dossier of ``device_id`` as of ``now_ms`` (404 for a device never seen)."""
    require_known(client, device_id)
    tag = device_tag(device_id)
    pipe = client.pipeline(transaction=False)
    for part in ("flags", "review", "allow"):
        pipe.hgetall(f"{tag}:{part}")
    pipe.get(f"{tag}:state")
    pipe.get(f"{tag}:outcomes")
    pipe.zscore(device_shard(REVIEW_QUEUE, device_id) if is_cluster(client) else REVIEW_QUEUE, device_id)
    flags_raw, review_raw, allow_raw, state, outcomes, priority = pipe.execute()
    flags, review, allow = decode_hash(flags_raw), decode_hash(review_raw), decode_hash(allow_raw)
    ban = store.get_ban("device", device_id)
    log, users_seen = decode_device_state(state)
    decisions, complete = recent_decisions(client, device_id)
    users = _users(client, policy, users_seen, decisions, now_ms)
    scores = _scores(client, device_id, users)
    history, _ = audit.query(client, entity=f"device:{device_id}", limit=50)
    return {
        "device_id": device_id,
        "as_of": now_ms,
        "status": derive_status(blocked_by_hand(ban, now_ms), bool(allow), review.get("label")),
        "cooling_down": cooling_down(ban, now_ms),
        "in_queue": priority is not None,
        "priority": priority,
        "review": review,
        # (an ended ban's key lives a day longer: it is no ban any more)
        "ban": ban if ban_in_force(ban, now_ms) else None,
        "allowlist": allow or None,
        "flags": {"reasons": reasons_of(flags), "points": int(flags.get("_points", 0)),
                  "first": int(flags["_first"]) if "_first" in flags else None,
                  "last_seen": last_seen(flags, state)},
        "counters": counters(policy, log, users_seen, outcomes, now_ms),
        "decisions": decisions,
        "decisions_complete": complete,
        "users": users,
        "scores": scores,
        "history": history,
    }


def _window(times: list[int], now_ms: int, limit: int, window_s: int) -> dict[str, Any]:
    inside = sorted(in_window(times, now_ms, window_s * 1000))
    return {"count": len(inside), "limit": limit, "window_s": window_s, "remaining": max(limit - len(inside), 0),
            "resets_in_s": -(-(inside[0] + window_s * 1000 - now_ms) // 1000) if inside else 0}


def counters(policy: Policy, log: list[int], users: dict[str, int], outcomes: bytes | None,
             now_ms: int) -> dict[str, Any]:
    """The device's windows now, against the policy's default rules (a merchant may override them)."""
    rules = policy.default.rules
    out: dict[str, Any] = {"policy_version": policy.version}
    for name in ("device_velocity", "device_daily_cap"):
        rule = getattr(rules, name)
        out[name] = _window(log, now_ms, rule.limit, rule.window_s)
    many = rules.device_many_users
    out["device_many_users"] = _window(list(users.values()), now_ms, many.limit, many.window_s)
    rate = rules.low_success_rate
    samples = successes = 0
    raw = outcomes or b""
    for i in range(0, len(raw) - OUTCOME_BYTES + 1, OUTCOME_BYTES):
        if now_ms - int.from_bytes(raw[i:i + 6], "big") < rate.window_s * 1000:
            samples += 1
            successes += raw[i + 6]
    out["low_success_rate"] = {"samples": samples, "successes": successes,
                               "rate": round(successes / samples, 3) if samples else None,
                               "min_samples": rate.min_samples, "threshold": rate.threshold,
                               "window_s": rate.window_s}
    return out


def recent_decisions(client: redis.Redis, device_id: str, scan: int = EVENT_SCAN,
                     keep: int = RECENT) -> tuple[list[dict[str, Any]], bool]:
    """The device's latest decisions (newest first) among the last ``scan`` events, with outcomes
    and challenge results."""
    # On Redis Cluster the device's events are in its own slot's shard.
    stream = device_shard(EVENTS, device_id) if is_cluster(client) else EVENTS
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrevrange(stream, "+", "-", count=scan))
    outcomes: dict[str, dict[str, int]] = {}
    challenges: dict[str, str] = {}
    held: dict[str, str] = {}
    found: list[dict[str, Any]] = []
    for _, f in entries:
        kind = f.get(b"k")
        if kind == b"challenge":
            # (a result is recorded once; a replay or a conflict writes no event)
            challenges.setdefault(f[b"id"].decode(), "passed" if f.get(b"passed") == b"1" else "failed")
            if b"held" in f:  # (a pass a ban kept from counting: which ban)
                held.setdefault(f[b"id"].decode(), f[b"held"].decode())
            continue
        if kind == b"outcome":
            # Newest first: the first report seen for a decision is its latest.
            outcomes.setdefault(f[b"id"].decode(), {"delivered": int(f[b"dl"]), "opened": int(f[b"op"]),
                                                     "claimed": int(f[b"cl"])})
            continue
        if kind != b"decision" or len(found) >= keep:
            continue
        req = orjson.loads(f[b"req"])
        if req.get("device_id") != device_id:
            continue
        codes = [c for c in f[b"rc"].decode().split(",") if c]
        found.append({
            "decision_id": f[b"id"].decode(), "ts": int(f[b"t"]), "decision": DECISIONS[int(f[b"dec"])],
            "reasons": [c for c in codes if not c.endswith(":shadow")],
            "shadow": [c.removesuffix(":shadow") for c in codes if c.endswith(":shadow")],
            "user_id": req.get("user_id"), "coupon_id": req.get("coupon_id"),
            "merchant_id": req.get("merchant_id"), "channel": req.get("channel"),
            "recipients": len(set(req["recipients"])) if req.get("recipients") else req.get("recipient_count"),
            "text": req.get("text"),
        })
    for d in found:
        # (events carry a short form of the id, keys.logged_id; the answer the whole id)
        d["outcome"] = outcomes.get(d["decision_id"])
        d["challenge_result"] = challenges.get(d["decision_id"]) if d["decision"] == "challenge" else None
        d["challenge_held"] = held.get(d["decision_id"])
        d["decision_id"] = logged_decision_id(d["decision_id"], device_id)
    return found, len(entries) < scan


def _users(client: redis.Redis, policy: Policy, seen: dict[str, int], decisions: list[dict[str, Any]],
           now_ms: int) -> list[dict[str, Any]]:
    """Users on the device: from its window state and its recent decisions, with their daily counts."""
    users: dict[str, dict[str, Any]] = {}
    for user, ts in seen.items():
        users[user] = {"user_id": user, "last_share": ts, "attempts": 0}
    for d in decisions:
        entry = users.setdefault(d["user_id"], {"user_id": d["user_id"], "last_share": None, "attempts": 0})
        entry["attempts"] += 1
    cap = policy.default.rules.user_daily_cap
    names = sorted(users)
    log_keys = [f"{user_tag(u)}:log" for u in names]
    # (users' logs are in many slots on Redis Cluster: one MGET per master there)
    mget = client.mget_nonatomic if is_cluster(client) else client.mget  # type: ignore[attr-defined]
    logs = cast(list[bytes | None], mget(log_keys)) if names else []
    for name, raw in zip(names, logs, strict=True):
        users[name]["user_daily_cap"] = _window(decode_log(raw or b""), now_ms, cap.limit, cap.window_s)
    return sorted(users.values(), key=lambda u: (-(u["last_share"] or 0), u["user_id"]))


def _scores(client: redis.Redis, device_id: str, users: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest batch scores of the device (with signals) and of its users."""
    version = current_version(client)
    if version is None:
        return {"version": None, "device": None, "users": {}}
    fields = [f"device:{device_id}", *(f"user:{u['user_id']}" for u in users)]
    rows = node_fields(client, version, "rows", fields)
    device = orjson.loads(rows[0]) if rows[0] else None
    scored = {u["user_id"]: orjson.loads(r) for u, r in zip(users, rows[1:], strict=True) if r}
    return {"version": version, "device": device,
            "users": {u: {"kol": r["kol"], "anomaly": r["anomaly"]} for u, r in scored.items()}}
