"""Choose each tunable rule's threshold from labelled shares.

For every candidate threshold, the labelled shares the rule would fire on
are counted: fraud among them are refusals we want, legit ones are refusals
we do not. The proposal is the threshold that refuses the most labelled
fraud while the precision on labelled shares (fraud / all labelled it fires
on) stays at or above the target. Among thresholds that do equally well the
current one is kept (the labels give no reason to move), else the least
strict one is taken (it refuses the fewest unlabelled shares). When no
threshold reaches the target, the current one is kept and said so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from riskservice.calibration.observe import COUNT_RULES, Observation
from riskservice.policy.model import Rules

__all__ = ["Proposal", "propose"]


@dataclass(frozen=True)
class Proposal:
    """One rule's current and proposed threshold, with what each fires on among labelled shares."""

    rule: str
    parameter: str
    current: float
    proposed: float
    labelled: int
    fraud: int
    at_current: dict[str, Any]
    at_proposed: dict[str, Any]
    note: str

    @property
    def changed(self) -> bool:
        return self.proposed != self.current

    def to_dict(self) -> dict[str, Any]:
        direction = "same" if not self.changed else "lower" if self.proposed < self.current else "higher"
        return {"rule": self.rule, "parameter": self.parameter, "current": self.current,
                "proposed": self.proposed, "direction": direction, "labelled": self.labelled,
                "fraud": self.fraud, "at_current": self.at_current, "at_proposed": self.at_proposed,
                "note": self.note}


def _fires(rule: str) -> Callable[[float, float], bool]:
    """Count rules fire above the limit; the graph rule at or above its threshold."""
    if rule == "graph_anomaly":
        return lambda value, threshold: value >= threshold
    return lambda value, limit: value > limit


def _effect(pairs: list[tuple[float, bool]], fires: Callable[[float, float], bool], threshold: float,
            ) -> dict[str, Any]:
    hit = [fraud for value, fraud in pairs if fires(value, threshold)]
    caught = sum(hit)
    return {"flagged": len(hit), "fraud": caught, "legit": len(hit) - caught,
            "precision": round(caught / len(hit), 4) if hit else None}


def _candidates(rule: str, values: set[float], current: float, bounds: tuple[float, float]) -> list[float]:
    """Thresholds where what the rule fires on changes: just under each observed value (count rules),
    or at each observed score (graph rule); within the policy's bounds."""
    low, high = bounds
    raw = {v if rule == "graph_anomaly" else v - 1 for v in values} | {current}
    return sorted(c for c in raw if low <= c <= high)


def _one(rule: str, parameter: str, current: float, pairs: list[tuple[float, bool]], target: float,
         bounds: tuple[float, float]) -> Proposal:
    fires = _fires(rule)
    best, best_effect = current, _effect(pairs, fires, current)
    best_caught = -1
    for c in _candidates(rule, {v for v, _ in pairs}, current, bounds):
        eff = _effect(pairs, fires, c)
        if eff["precision"] is None or eff["precision"] < target:
            continue
        # The most fraud refused; among equals the current, else the least strict (higher).
        better = eff["fraud"] > best_caught or (eff["fraud"] == best_caught and best != current and c > best)
        if better or (eff["fraud"] == best_caught and c == current):
            best, best_effect, best_caught = c, eff, eff["fraud"]
    note = ""
    if best_caught < 0:
        best, best_effect = current, _effect(pairs, fires, current)
        note = f"no threshold reaches precision {target:g} on the labelled shares: kept"
    fraud = sum(f for _, f in pairs)
    if isinstance(current, int):
        best = int(best)
    return Proposal(rule, parameter, current, best, len(pairs), fraud, _effect(pairs, fires, current),
                    best_effect, note)


def propose(observations: list[Observation], rules: Rules, target: float) -> list[Proposal]:
    """A proposal for every tunable rule that has values (graph_anomaly only with scores)."""
    out = []
    names: tuple[str, ...] = COUNT_RULES
    if any("graph_anomaly" in o.values for o in observations):
        names = (*names, "graph_anomaly")
    for name in names:
        pairs = [(o.values[name], o.fraud) for o in observations if name in o.values]
        rule = getattr(rules, name)
        if name == "graph_anomaly":
            out.append(_one(name, "threshold", rule.threshold, pairs, target, (0.01, 1.0)))
        else:
            high = type(rule).model_fields["limit"].metadata
            upper = min((m.le for m in high if getattr(m, "le", None) is not None), default=1_000_000)
            out.append(_one(name, "limit", rule.limit, pairs, target, (1, upper)))
    return out
