"""Reward checks: before paying a user a share reward, allow, challenge or block.

WeChat's coupon-sharing guide: at most 500 yuan of rewards per user in any 24 h (an exact sliding
sum, checked and recorded in one atomic script, idempotent by ``event_id``),
nothing for banned devices or users, a challenge for users whose latest graph
anomaly score is high, and a bonus for KOL tiers (users reaching more than
500 people get 5 % extra). Tiers and bonuses are policy data.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from riskservice.decisions.engine import DECISIONS, fingerprint, split
from riskservice.decisions.request import Id
from riskservice.errors import Conflict
from riskservice.graph_store import NO_VERSION
from riskservice.limits.clock import Clock, ServerClock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import ban_key, user_tag
from riskservice.limits.store import REWARD, RedisStore
from riskservice.policy.load import Policy


class RewardRequest(BaseModel):
    """``POST /v1/rewards/check``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: Id = Field(description="Idempotency key: the same id returns the same answer and counts once.")
    user_id: Id
    device_id: Id
    amount_cents: int = Field(gt=0, le=100_000_000)
    reason: str = Field(min_length=1, max_length=200, description="What the reward is for.")


class RewardChecker:
    """Judges reward payments against the policy's ``rewards`` section."""

    def __init__(self, store: RedisStore | ClusterStore, policy: Callable[[], Policy], *, clock: Clock | None = None,
                 graph_key: Callable[[], str] | None = None, ttl_ms: int = 4 * 86_400_000) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or ServerClock()
        self.graph_key = graph_key or (lambda: NO_VERSION)
        self.ttl_ms = ttl_ms

    def check(self, req: RewardRequest, body: dict[str, Any]) -> dict[str, Any]:
        rules = self.policy().rewards
        tiers = sorted(rules.kol_tiers, key=lambda t: -t.min_recipients)
        user = user_tag(req.user_id)
        event = hashlib.blake2b(req.event_id.encode(), digest_size=12).hexdigest()
        keys: tuple[str, ...] = (f"{user}:rw:{event}", f"{user}:rewards", ban_key("device", req.device_id),
                ban_key("user", req.user_id), self.graph_key())
        now = self.clock.now_ms()
        args: tuple[Any, ...] = ("" if now is None else now, fingerprint(body), req.amount_cents, rules.daily_cap_cents,
                rules.window_s * 1000, rules.anomaly_threshold, req.user_id, req.device_id,
                orjson.dumps([[t.name, t.min_recipients, t.bonus_pct] for t in tiers]), self.ttl_ms,
                uuid.uuid4().hex)
        if isinstance(self.store, ClusterStore):
            # The device's ban and scores live in its slot: read them first.
            keys, args = self.store.reward_split(keys, args, req.user_id, req.device_id)
        status, raw = self.store.run(REWARD, keys, args)
        rec = orjson.loads(raw)
        if status == b"conflict":
            raise Conflict("event_id was already used for a different reward; use a new event_id",
                           {"event_id": "reused with a different request body"})
        findings = rec["f"] if isinstance(rec["f"], list) else []
        reasons, _ = split(findings)
        return {
            "decision": DECISIONS[rec["dec"]],
            "challenge": rec["ch"] or None,
            "reward_id": rec["id"],
            "reasons": reasons,
            "amount_cents": rec["amount"],
            "bonus_cents": rec["bonus"],
            "kol_tier": rec["tier"],
            "reach": rec["reach"],
            "anomaly": rec["anomaly"],
            "replayed": status == b"replay",
        }
