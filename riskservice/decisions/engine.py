"""The decision path: validated request -> rules -> one Redis script -> decision."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from riskservice.decisions.degraded_log import DegradedLog
from riskservice.decisions.request import DecisionRequest
from riskservice.decisions.rules import Finding, Flags, reason, stateless_findings
from riskservice.errors import Conflict, StorageError
from riskservice.graph_store import NO_VERSION
from riskservice.limits.clock import Clock, ServerClock
from riskservice.limits.contract import CHALLENGES, DecideArgs
from riskservice.limits.keys import DecisionKeys, decision_keys, new_decision_id
from riskservice.limits.outage import MissedShare, OutageLog
from riskservice.limits.records import DecisionRecord
from riskservice.limits.sliding import combine
from riskservice.policy.load import Policy
from riskservice.policy.rollout import enforced

DECISIONS = ("allow", "challenge", "block")
FAIL_MODE_SEVERITY = {"allow": 0, "challenge": 1, "block": 2}
# Redis Cluster: how long after a failed write-back of outage shares to try again.
RECONCILE_RETRY_S = 0.1
# The window reported in the RateLimit headers.
HEADER_RULE = "device_velocity"


class DecisionStore(Protocol):
    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord: ...

    def server_now_ms(self) -> int: ...

    def reconcile(self, shares: list[MissedShare]) -> None: ...


@dataclass(frozen=True)
class Decision:
    """One answer, ready to serialise."""

    decision: str
    challenge: str | None
    decision_id: str
    reasons: list[dict[str, Any]]
    shadow: list[dict[str, Any]]
    policy_version: str
    degraded: bool
    replay: bool = False
    ts_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # From the latest graph scores at decision time (None: not scored yet).
    anomaly: float | None = None
    kol: float | None = None
    # Rules under a gray rollout -> the arm this device is in ("enforced" or "shadow").
    arms: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        severity = DECISIONS.index(self.decision)
        return {
            "decision": self.decision,
            "challenge": self.challenge,
            "decision_id": self.decision_id,
            "reasons": self.reasons,
            "shadow": self.shadow,
            # risk: the enforced severity on a 0..1 scale, or the graph anomaly
            # score if higher; graph scores are null until a batch wrote them.
            "scores": {"risk": max(severity / 2, self.anomaly or 0.0), "anomaly": self.anomaly, "kol": self.kol},
            "policy_version": self.policy_version,
            "degraded": self.degraded,
        }


def canonical(body: dict[str, Any]) -> bytes:
    """The parsed request body as JSON with sorted keys: what is recorded, and
    what is fingerprinted (a client re-serialising the same share differently
    still replays)."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _number(value: Any) -> Any:
    """A whole number written ``31.0`` as ``31`` (one number, two spellings)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def same_share(body: dict[str, Any]) -> dict[str, Any]:
    """What makes two bodies the same share: fields given as ``null`` are as
    if left out (riskclient leaves them out, other clients send them), a
    number is the same however it is spelt (``31`` and ``31.0``), and
    ``recipients`` is a set (the rules count distinct recipients), so a
    client that resends the share with its recipients in another order
    replays it rather than meeting a 409."""
    same = {k: same_share(v) if isinstance(v, dict) else _number(v) for k, v in body.items() if v is not None}
    recipients = same.get("recipients")
    if isinstance(recipients, list) and all(isinstance(r, str) for r in recipients):
        same["recipients"] = sorted(set(recipients))
    return same


def fingerprint(body: dict[str, Any] | bytes) -> str:
    """A digest of the request body, to tell a replay from a reused event id
    (a parsed body is taken as :func:`same_share` sees it)."""
    data = body if isinstance(body, bytes) else canonical(same_share(body))
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def arms(rollouts: tuple[tuple[str, int, bool], ...], device_id: str) -> str:
    """The per-device shadow flags of the stateful rules, by rule id ("" when none is rolled out)."""
    if not rollouts:
        return ""
    return "".join("1" if shadow or not enforced(name, device_id, percent) else "0"
                   for name, percent, shadow in rollouts)


def static_verdict(findings: list[Finding]) -> tuple[int, int, str]:
    """What the script needs of the stateless findings: whether one blocks,
    the strongest challenge (0 none, 1 captcha, 2 sms), and their codes for
    the share event ("?" marks an enforced challenge, which an allowlist makes
    shadow).

    >>> static_verdict([["fan_out", 1, 0, "sms"], ["sensitive_copy", 2, 1, ""]])
    (0, 2, 'fan_out?,sensitive_copy:shadow')
    """
    if not findings:
        return 0, 0, ""  # most decisions
    block, challenge, codes = 0, 0, []
    for f in findings:
        code, severity, shadow, kind = f[0], int(f[1]), int(f[2]), str(f[3])
        if shadow:
            codes.append(f"{code}:shadow")
            continue
        if severity == 2:
            block = 1
            codes.append(code)
        else:
            challenge = max(challenge, CHALLENGES.index(kind))
            codes.append(f"{code}?")
    return block, challenge, ",".join(codes)


def split(findings: list[Finding]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Enforced reasons and shadow reasons, most severe first (one explanation each, see :func:`one_explanation`)."""
    if not findings:
        return [], []  # most decisions
    ordered = sorted(one_explanation(findings), key=lambda f: -int(f[1]))
    return [reason(f) for f in ordered if not f[2]], [reason(f) for f in ordered if f[2]]


#: Signals judged with the request rules, from the board (riskservice/signals/board.py).
BOARD_SIGNALS = ("sink_recipient", "fresh_burst", "ring_block", "device_pool")


def _strength(f: Finding) -> float:
    observed, limit = f[4], f[5]
    if isinstance(observed, int | float) and isinstance(limit, int | float) and limit:
        return float(observed) / float(limit)
    return 0.0


def one_explanation(findings: list[Finding]) -> list[Finding]:
    """The batch's ``graph_anomaly`` and a board signal of the same mode
    (enforced or shadow) explain one thing: only the stronger (observed /
    threshold) is given; a tie keeps the graph's. (``decide.lua`` does the
    same between ``graph_anomaly`` and the signals it judges.)

    >>> g = ["graph_anomaly", 1, 0, "captcha", 0.9, 0.8, None, 0]
    >>> s = ["sink_recipient", 1, 0, "captcha", 6, 3, None, 0]
    >>> [f[0] for f in one_explanation([g, s])], [f[0] for f in one_explanation([g, s[:4] + [3, 3, None, 0]])]
    (['sink_recipient'], ['graph_anomaly'])
    """
    out = list(findings)
    for mode in (0, 1):
        graph = [f for f in out if f[0] == "graph_anomaly" and int(f[2]) == mode]
        board = [f for f in out if f[0] in BOARD_SIGNALS and int(f[2]) == mode]
        if not graph or not board:
            continue
        best = max(_strength(f) for f in board)
        if best > _strength(graph[0]):
            out = [f for f in out if f is not graph[0]]
        else:
            out = [f for f in out if not any(f is b for b in board)]
    return out


class DecisionEngine:
    """Decides shares against the current policy and the store.

    Parameters
    ----------
    store : DecisionStore
        Where windows, bans and event records live (Redis in service).
    policy : callable
        Returns the current :class:`Policy` (it may be reloaded at any time).
    clock : Clock
        :class:`ServerClock` in service; a manual clock in tests.
    fail_mode : str
        The answer's floor when the store is unavailable.
    decision_ttl_ms : int
        How long a decision is kept, for replays and late outcomes.
    retention_ms : int
        How long share events are kept.
    graph_key : callable, optional
        The key of the current graph scores (:class:`riskservice.graph_store.VersionCache`).
    outage_capacity : int
        How many shares allowed during a Redis outage a process remembers, to
        count them once Redis is back.
    cluster : bool
        Whether the store is a Redis Cluster (whose masters fail one at a time).
    flags : Flags, optional
        The signal board's flags of other accounts (recipients), in memory
        (:class:`riskservice.signals.board_cache.BoardCache`); None: no
        ``sink_recipient`` rule.
    """

    def __init__(self, store: DecisionStore, policy: Callable[[], Policy], *, clock: Clock | None = None,
                 fail_mode: str = "allow", decision_ttl_ms: int = 4 * 86_400_000,
                 retention_ms: int = 30 * 86_400_000, graph_key: Callable[[], str] | None = None,
                 outage_capacity: int = 10_000, cluster: bool = False, flags: Flags | None = None) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or ServerClock()
        self.fail_mode = fail_mode
        self.decision_ttl_ms = decision_ttl_ms
        self.retention_ms = retention_ms
        self.graph_key = graph_key or (lambda: NO_VERSION)
        self.flags = flags
        self.outage = OutageLog(outage_capacity)
        self.cluster = cluster
        # Shares written back per decision after an outage. On a cluster a
        # batch must fit one master's share of the budget: a batch that timed
        # out would open that master's breaker and degrade its decisions.
        self.reconcile_batch = 50 if cluster else 500
        self._reconcile_after = 0.0
        self.degraded_log = DegradedLog()

    def decide(self, req: DecisionRequest, body: dict[str, Any]) -> Decision:
        """Answer one share (``body``: the parsed JSON it was validated from).

        Raises :class:`Conflict` for an event id reused with another body.
        """
        policy = self.policy()
        compiled = policy.for_merchant(req.merchant_id)
        static = stateless_findings(req, compiled.rules, compiled.matcher, self.flags)
        recorded = canonical(body)
        keys = decision_keys(req.event_id, req.device_id, req.user_id, req.ip, graph=self.graph_key())
        # (An id that names its record: outcomes and challenges need no key of their own to find it.)
        decision_id = new_decision_id(req.device_id, keys.event)
        block, challenge, codes = static_verdict(static)
        now_ms = self.clock.now_ms()
        args = DecideArgs(
            now="" if now_ms is None else now_ms, deadline="", fingerprint=fingerprint(body),
            decision_id=decision_id, user_id=req.user_id, device_id=req.device_id, plan=compiled.plan,
            policy_version=policy.version, static_findings=orjson.dumps(static) if static else b"",
            static_block=block, static_challenge=challenge, static_codes=codes, ttl_ms=self.decision_ttl_ms,
            request=recorded, lat=repr(req.geo.lat) if req.geo else "", lon=repr(req.geo.lon) if req.geo else "",
            merchant_id=req.merchant_id or "", recipients=req.fan_out, retention_ms=self.retention_ms,
            arms=arms(compiled.rollouts, req.device_id),
        )
        try:
            if self.outage.pending() and time.monotonic() >= self._reconcile_after:
                try:
                    self._reconcile()
                except StorageError:
                    # On Redis Cluster a master that is still down (the outage's)
                    # says nothing about this decision's masters; try again a
                    # little later rather than on every decision.
                    if not self.cluster:
                        raise
                    self._reconcile_after = time.monotonic() + RECONCILE_RETRY_S
            rec = self.store.decide(keys, args)
        except StorageError as exc:
            self.degraded_log.note(exc)
            return self._degraded(static, policy.version, keys, args)
        if rec.status == "conflict":
            raise Conflict(
                "event_id was already used for a different share; use a new event_id",
                {"event_id": "reused with a different request body"},
            )
        reasons, shadow = split(rec.findings)
        graph = (rec.raw or {}).get("g") or [None, None]
        return Decision(
            decision=DECISIONS[rec.decision], challenge=rec.challenge or None, decision_id=rec.decision_id,
            reasons=reasons, shadow=shadow, policy_version=rec.policy_version, degraded=False,
            replay=rec.status == "replay", ts_ms=rec.ts_ms, headers=self._headers(compiled.rules, rec),
            anomaly=graph[0], kol=graph[1],
            arms={name: "enforced" if enforced(name, req.device_id, pct) else "shadow"
                  for name, pct in compiled.rolled_out},
        )

    def _degraded(self, static: list[Finding], version: str, keys: DecisionKeys, args: DecideArgs) -> Decision:
        """An answer without Redis. With the fail mode ``allow``, the count
        windows are judged locally and an allowed share is remembered, to be
        counted in Redis when it answers again (:mod:`riskservice.limits.outage`)."""
        severity = FAIL_MODE_SEVERITY[self.fail_mode]
        if severity:
            findings = [*static, ["redis_unavailable", severity, 0, "captcha" if severity == 1 else "",
                                  None, None, None, 0]]
        else:
            now = self.store.server_now_ms() if args.now == "" else int(args.now)
            findings = self.outage.judge(keys, args._replace(now=now, deadline="")).findings
        decision, challenge = combine(findings)
        reasons, shadow = split(findings)
        return Decision(DECISIONS[decision], challenge or None, args.decision_id, reasons, shadow, version,
                        degraded=True)

    def reconcile_pending(self) -> int:
        """Write every share allowed during an outage that is still pending,
        batch after batch; returns how many were written. A decision writes
        one batch on its way; this drains them on a quiet process too
        (``riskservice.process.keep_reconciling``). Raises StorageError while
        Redis is still unavailable (what was written before stays written)."""
        written = 0
        while self.outage.pending() > 0:
            written += self._reconcile()
        return written

    def _reconcile(self) -> int:
        """Write a batch of the shares allowed during an outage, oldest first,
        in one round trip (raises StorageError while Redis is still
        unavailable). One batch per decision keeps each answer's latency
        bounded; a full log drains within a few hundred decisions."""
        shares = self.outage.take(self.reconcile_batch)
        try:
            self.store.reconcile(shares)
        except StorageError:
            self.outage.restore(shares)
            raise
        self.outage.written(shares)
        return len(shares)

    @staticmethod
    def _headers(rules: Any, rec: DecisionRecord) -> dict[str, str]:
        """IETF RateLimit headers for the device-velocity window."""
        rule = rules.device_velocity
        if not rule.enabled or HEADER_RULE not in rec.windows:
            return {}
        count, reset_ms = rec.windows[HEADER_RULE]
        remaining = max(rule.limit - count, 0)
        return {
            "RateLimit-Policy": f'"{HEADER_RULE}";q={rule.limit};w={rule.window_s}',
            "RateLimit": f'"{HEADER_RULE}";r={remaining};t={-(-reset_ms // 1000)}',
        }
