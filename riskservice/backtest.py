"""Replay recorded share events through a candidate policy.

The way an analyst tests a rule before switching it on (like Stripe Radar's
rule backtests): every recorded decision, outcome report and challenge result
is replayed in the order it happened, with its own time as the clock, through
the candidate policy on a scratch Redis (never the live keys), and the
decisions that would change are counted by rule and by merchant.

Bans are state, not policy: a recorded decision that met a blocklist meets
the same ban in the replay.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from riskservice.decisions.engine import DecisionEngine
from riskservice.decisions.lifecycle import ChallengeResult, OutcomeRequest, ShareLifecycle
from riskservice.decisions.request import DecisionRequest
from riskservice.embedded_redis import EmbeddedRedis
from riskservice.errors import ApiError
from riskservice.graph_store import NO_VERSION, version_key, write_back
from riskservice.limits.client import connect
from riskservice.limits.clock import ManualClock
from riskservice.limits.store import RedisStore
from riskservice.policy.load import Policy
from riskservice.signals.board_cache import BoardCache
from riskservice.signals.consumer import SignalConsumer

REQUEST_FIELDS = tuple(DecisionRequest.model_fields)
BANS = {"device_blocklist": ("device", "device_id"), "user_blocklist": ("user", "user_id"),
        "ip_blocklist": ("ip", "ip")}


@dataclass
class BacktestResult:
    """What changed between the recording and the candidate policy."""

    policy_version: str
    decisions: int = 0
    outcomes: int = 0
    challenges: int = 0
    changed: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # rule -> decisions where it fires now but did not, and the reverse
    rule_added: Counter[str] = field(default_factory=Counter)
    rule_removed: Counter[str] = field(default_factory=Counter)
    by_merchant: Counter[str] = field(default_factory=Counter)
    merchant_totals: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    # recorded decision id -> the candidate's decision (for calibrate's per-label comparison)
    decided: dict[str, str] = field(default_factory=dict, repr=False)
    # recorded decision id -> the candidate's enforced reasons, for refused decisions
    refused_by: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version, "decisions": self.decisions, "outcomes": self.outcomes,
            "challenges": self.challenges, "changed": self.changed,
            "transitions": {f"{a}->{b}": n for (a, b), n in sorted(self.transitions.items())},
            "rules": {r: {"added": self.rule_added[r], "removed": self.rule_removed[r]}
                      for r in sorted(set(self.rule_added) | set(self.rule_removed))},
            "merchants": {m: {"changed": self.by_merchant[m], "decisions": self.merchant_totals[m]}
                          for m in sorted(self.merchant_totals)},
            "examples": self.examples,
        }


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from None


def read_recorded(path: Path) -> Iterator[dict[str, Any]]:
    """The share events of an export (``python -m riskservice export``), each
    checked for what a replay reads of the recording.

    Raises
    ------
    ValueError
        Naming the line, when one is no JSON object, or lacks the time
        (``ts``, epoch seconds), the ``decision_id`` or the ``decision``; the
        request's own fields are judged as the API judges them, at replay.
    """
    for number, ev in enumerate(read_jsonl(path), 1):
        problem = _not_recorded(ev)
        if problem:
            raise ValueError(f"{path}: event {number} {problem}: not a recorded share event "
                             "(python -m riskservice export writes them)")
        yield ev


def _not_recorded(ev: Any) -> str | None:
    """What an export line lacks that a replay reads, or None."""
    if not isinstance(ev, dict):
        return "is no JSON object"
    ts = ev.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "has no ts (epoch seconds)"
    if not isinstance(ev.get("decision_id"), str):
        return "has no decision_id"
    if ev.get("decision") not in ("allow", "challenge", "block"):
        return "has no decision (allow, challenge or block)"
    return None


def _order(seq: str | None, ts: float, rank: int) -> tuple[int, int, int]:
    """Sort key: the stream id when the line has one (the exact order of
    recording), else the time."""
    if seq:
        ms, _, n = seq.partition("-")
        return int(ms), int(n), rank
    return round(ts * 1000), 0, rank


def timeline(events: Iterable[dict[str, Any]]) -> list[tuple[tuple[int, int, int], str, dict[str, Any], Any]]:
    """Decisions, outcome reports and challenge results in the order they happened."""
    items = []
    for ev in events:
        items.append((_order(ev.get("seq"), ev["ts"], 0), "decision", ev, None))
        seqs = ev.get("outcome_seq") or []
        history = ev.get("outcome_history") or (
            [[ev["ts"], ev["delivered"], ev["opened"], ev["claimed"]]] if ev.get("delivered") is not None else [])
        for i, report in enumerate(history):
            items.append((_order(seqs[i] if i < len(seqs) else None, report[0], 1), "outcome", ev, report))
        if ev.get("challenge_passed") is not None:
            ts = ev.get("challenge_ts") or ev["ts"]
            items.append((_order(ev.get("challenge_seq"), ts, 1), "challenge", ev, ev["challenge_passed"]))
    items.sort(key=lambda item: item[0])
    return items


def run_backtest(events: Iterable[dict[str, Any]], policy: Policy, *, examples: int = 10,
                 redis_url: str | None = None, signals: bool = True,
                 scores: Iterable[dict[str, Any]] | None = None) -> BacktestResult:
    """Replay ``events`` through ``policy`` on a scratch Redis.

    Parameters
    ----------
    events : iterable of dict
        Exported share events (``python -m riskservice export``).
    policy : Policy
        The candidate.
    examples : int
        How many changed decisions to keep as examples.
    redis_url : str, optional
        A scratch Redis to use (it is flushed!); by default one is started in
        a temporary folder and stopped after.
    signals : bool
        Replay the real-time signals too: every replayed decision and outcome
        goes through the signal consumer (``riskservice.signals``), whose
        writes are applied before the next event, so the signal rules see
        what they would have seen (in service they lag by under a second).
    scores : iterable of dict, optional
        Batch score rows (``scores.jsonl``) the replay's graph rule reads;
        without them it never fires.
    """
    with tempfile.TemporaryDirectory(prefix="risk-backtest-") as scratch:
        embedded = None
        if redis_url is None:
            embedded = EmbeddedRedis(Path(scratch))
            redis_url = embedded.ensure()
        try:
            client = connect(redis_url, budget_ms=10_000)
            client.flushdb()
            consumer = None
            if signals:
                consumer = SignalConsumer(client, name="backtest")
                consumer.start(now_ms=0)
            graph = NO_VERSION
            if scores is not None:
                graph = version_key(write_back(client, scores, source="backtest"), "fast")
            return _replay(events, policy, RedisStore(client, breaker_cooldown_ms=0), examples, consumer, graph)
        finally:
            if embedded is not None:
                embedded.stop()


def _replay(events: Iterable[dict[str, Any]], policy: Policy, store: RedisStore, examples: int,
            consumer: SignalConsumer | None = None, graph: str = NO_VERSION) -> BacktestResult:
    clock = ManualClock(0)
    # The workers' copy of the signal board, checked once a second of event
    # time: the replay sees it as stale as the service would.
    flags = BoardCache(store.client, clock=clock.now_ms) if consumer is not None else None
    engine = DecisionEngine(store, lambda: policy, clock=clock, fail_mode="allow", graph_key=lambda: graph,
                            flags=flags)
    lifecycle = ShareLifecycle(store, lambda: policy, clock=clock)
    result = BacktestResult(policy.version)
    # recorded decision id -> the replay's decision id and the challenge it asked
    new_ids: dict[str, tuple[str, str | None]] = {}
    for _, kind, ev, payload in timeline(events):
        if kind == "decision":
            clock.set(round(ev["ts"] * 1000))
            body = {k: ev[k] for k in REQUEST_FIELDS if ev.get(k) is not None}
            recorded = set(ev.get("reasons", [])) | set(ev.get("shadow", []))
            carried = [(BANS[c][0], ev[BANS[c][1]]) for c in recorded if c in BANS and ev.get(BANS[c][1])]
            for entity, entity_id in carried:
                store.set_ban(entity, entity_id, reason="carried over from the recording", actor="backtest")
            decision = engine.decide(DecisionRequest.model_validate(body), body)
            for entity, entity_id in carried:
                store.clear_ban(entity, entity_id)
            new_ids[ev["decision_id"]] = (decision.decision_id, decision.challenge)
            _compare(result, ev, decision.decision, [r["code"] for r in decision.reasons], examples)
        elif ev["decision_id"] in new_ids:
            decision_id, asked = new_ids[ev["decision_id"]]
            try:
                if kind == "outcome":
                    clock.set(round(payload[0] * 1000))
                    lifecycle.outcome(OutcomeRequest(decision_id=decision_id, delivered=payload[1],
                                                     opened=payload[2], claimed=payload[3]))
                    result.outcomes += 1
                else:
                    clock.set(round((ev.get("challenge_ts") or ev["ts"]) * 1000))
                    if asked is None:
                        continue  # the candidate did not challenge this share
                    # A pass an analyst's ban held in the recording meets that ban again (the
                    # ban itself is not in the export), unless the replay already has one.
                    carried_ban = (payload and ev.get("challenge_held") == "device_blocklist"
                                   and store.get_ban("device", ev["device_id"]) is None)
                    if carried_ban:
                        store.set_ban("device", ev["device_id"], reason="carried over from the recording",
                                      actor="backtest")
                    try:
                        lifecycle.challenge(decision_id,
                                            ChallengeResult.model_validate({"passed": payload, "kind": asked}))
                    finally:
                        if carried_ban:
                            store.clear_ban("device", ev["device_id"])
                    result.challenges += 1
            except ApiError:
                # The candidate decided differently (no share, or no challenge):
                # the report does not apply to it.
                pass
        if consumer is not None:
            consumer.poll()
    return result


def _compare(result: BacktestResult, ev: dict[str, Any], decision: str, codes: list[str], examples: int) -> None:
    merchant = ev.get("merchant_id") or "(none)"
    result.decisions += 1
    result.merchant_totals[merchant] += 1
    result.decided[ev["decision_id"]] = decision
    if decision != "allow":
        result.refused_by[ev["decision_id"]] = codes
    before = set(ev.get("reasons", []))
    after = set(codes)
    for code in after - before:
        result.rule_added[code] += 1
    for code in before - after:
        result.rule_removed[code] += 1
    if decision != ev["decision"]:
        result.changed += 1
        result.transitions[(ev["decision"], decision)] += 1
        result.by_merchant[merchant] += 1
        if len(result.examples) < examples:
            result.examples.append({"event_id": ev["event_id"], "merchant_id": ev.get("merchant_id"),
                                    "device_id": ev.get("device_id"), "ts": ev["ts"],
                                    "recorded": ev["decision"], "recorded_reasons": sorted(before),
                                    "candidate": decision, "candidate_reasons": sorted(after)})


def format_report(result: BacktestResult, source: str, candidate: str) -> str:
    """A plain-text report for analysts."""
    share = result.changed / result.decisions * 100 if result.decisions else 0.0
    lines = [
        f"Backtest of {candidate} ({result.policy_version}) on {source}",
        f"  {result.decisions} decisions, {result.outcomes} outcome reports, "
        f"{result.challenges} challenge results replayed",
        f"  changed: {result.changed} ({share:.2f} %)",
    ]
    for (a, b), n in sorted(result.transitions.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {a} -> {b}: {n}")
    rules = sorted(set(result.rule_added) | set(result.rule_removed))
    if rules:
        lines.append("  by rule (decisions where it now fires / no longer fires):")
        lines += [f"    {r}: +{result.rule_added[r]} / -{result.rule_removed[r]}" for r in rules]
    changed_merchants = [m for m in result.merchant_totals if result.by_merchant[m]]
    if changed_merchants:
        lines.append("  by merchant (changed of decisions):")
        lines += [f"    {m}: {result.by_merchant[m]} of {result.merchant_totals[m]}"
                  for m in sorted(changed_merchants, key=lambda m: -result.by_merchant[m])]
    if result.examples:
        lines.append("  examples:")
        for ex in result.examples:
            lines.append(f"    event {ex['event_id']} (merchant {ex['merchant_id']}, device {ex['device_id']}): "
                         f"{ex['recorded']} {ex['recorded_reasons']} -> {ex['candidate']} {ex['candidate_reasons']}")
    return "\n".join(lines)
