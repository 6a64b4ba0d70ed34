"""``python -m riskservice calibrate``: propose thresholds from labels, write a candidate policy,
and show the expected change by replaying the events through the current and the candidate policy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from riskservice.backtest import BacktestResult, read_jsonl, read_recorded, run_backtest
from riskservice.calibration.observe import observe
from riskservice.calibration.propose import Proposal, propose
from riskservice.policy.load import Policy, load_policy

__all__ = ["calibrate", "format_calibration", "read_scores", "write_candidate"]


def read_scores(path: Path) -> list[dict[str, Any]]:
    """The rows of the batch job's ``scores.jsonl``."""
    return list(read_jsonl(path))


def anomaly_of(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """``(kind, node) -> anomaly`` of score rows."""
    return {(str(r["kind"]), str(r["node"])): float(r["anomaly"]) for r in rows if r.get("anomaly") is not None}


def write_candidate(policy_file: Path, proposals: list[Proposal], output: Path, source: str) -> None:
    """The policy file with the proposed defaults (merchant overrides untouched)."""
    raw: dict[str, Any] = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    for p in proposals:
        if p.changed:
            raw.setdefault("rules", {}).setdefault(p.rule, {})[p.parameter] = p.proposed
    header = (f"# Candidate policy proposed by `python -m riskservice calibrate` from {source},\n"
              f"# based on {policy_file}. Review it, backtest it, then deploy it.\n")
    output.write_text(header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _by_label(events: list[dict[str, Any]], result: BacktestResult) -> dict[str, dict[str, int]]:
    """Shares refused (challenge or block) by the replayed policy, by label."""
    out: dict[str, Counter[str]] = {k: Counter() for k in ("fraud", "legit", "unlabelled")}
    for ev in events:
        decision = result.decided.get(ev["decision_id"])
        if decision is None:
            continue
        group = str(ev["label"]) if ev.get("label") in ("fraud", "legit") else "unlabelled"
        out[group]["shares"] += 1
        out[group]["refused"] += decision != "allow"
        out[group]["blocked"] += decision == "block"
    return {k: {f: c[f] for f in ("shares", "refused", "blocked")} for k, c in out.items()}


def calibrate(input_file: Path, policy_file: Path, output: Path, *, target: float = 0.9,
              scores_file: Path | None = None, rules: tuple[str, ...] = (), redis_url: str | None = None,
              backtest: bool = True) -> dict[str, Any]:
    """Propose, write the candidate to ``output``, and backtest current and candidate.

    Parameters
    ----------
    input_file : Path
        Exported share events with labels (``python -m riskservice export``).
    policy_file : Path
        The current policy file.
    output : Path
        Where the candidate policy file goes.
    target : float
        The precision on labelled shares a proposed threshold must keep.
    scores_file : Path, optional
        The batch job's ``scores.jsonl``, to calibrate the graph-anomaly threshold
        (and for the backtests' graph rule).
    rules : tuple of str
        Only these rules (default: every tunable one).
    redis_url : str, optional
        A scratch Redis for the backtests (flushed); by default an embedded one.
    """
    current = load_policy(policy_file)
    events = list(read_recorded(input_file))
    rows = read_scores(scores_file) if scores_file else None
    defaults = current.for_merchant(None).rules
    observations = observe(events, defaults, anomaly_of(rows) if rows is not None else None)
    proposals = [p for p in propose(observations, defaults, target) if not rules or p.rule in rules]
    write_candidate(policy_file, proposals, output, str(input_file))
    candidate: Policy = load_policy(output)  # the file as written must load
    result: dict[str, Any] = {
        "input": str(input_file), "policy": str(policy_file), "candidate": str(output),
        "target_precision": target, "events": len(events), "labelled": len(observations),
        "fraud": sum(o.fraud for o in observations), "candidate_version": candidate.version,
        "proposals": [p.to_dict() for p in proposals],
    }
    if backtest:
        before = run_backtest(events, current, examples=0, redis_url=redis_url, scores=rows)
        after = run_backtest(events, candidate, examples=5, redis_url=redis_url, scores=rows)
        result["backtest"] = {"current": _by_label(events, before), "candidate": _by_label(events, after),
                              "candidate_changes": after.to_dict()}
    return result


def format_calibration(result: dict[str, Any]) -> str:
    """A plain-text report for analysts."""
    lines = [f"Calibration of {result['policy']} on {result['input']}: {result['events']} shares, "
             f"{result['labelled']} labelled ({result['fraud']} fraud), "
             f"target precision {result['target_precision']:g}"]
    for p in result["proposals"]:
        cur, new = p["at_current"], p["at_proposed"]
        lines.append(f"  {p['rule']}.{p['parameter']}: {p['current']:g} -> {p['proposed']:g} ({p['direction']}); "
                     f"labelled fraud refused {cur['fraud']} -> {new['fraud']}, legit {cur['legit']} -> {new['legit']}"
                     + (f"; {p['note']}" if p["note"] else ""))
    lines.append(f"  candidate policy written to {result['candidate']} ({result['candidate_version']})")
    bt = result.get("backtest")
    if bt:
        lines.append("  expected change (backtest replay, refused shares current -> candidate):")
        for group in ("fraud", "legit", "unlabelled"):
            a, b = bt["current"][group], bt["candidate"][group]
            lines.append(f"    {group}: {a['refused']} -> {b['refused']} of {a['shares']} "
                         f"(blocked {a['blocked']} -> {b['blocked']})")
        lines.append(f"    decisions changed against the recording: {bt['candidate_changes']['changed']}")
    return "\n".join(lines)


def dumps(result: dict[str, Any]) -> str:
    return orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
