"""What each tunable rule would observe on every exported share, replayed in order.

A count rule fires on a share when what it counts, the share included, goes
above its ``limit``; the graph rule fires when the device's or sharer's
anomaly score is at or above its ``threshold``. To propose a threshold we
need, for every labelled share, the value its rule saw:

- ``device_velocity``, ``device_daily_cap``: the device's shares in the
  rule's sliding window that consumed quota (allowed, or a challenge later
  passed), plus this one;
- ``user_daily_cap``: the same per user;
- ``device_many_users``: distinct users among those shares of the device in
  the window, this share's user included;
- ``fan_out``: the share's recipients;
- ``graph_anomaly``: the larger of the device's and the user's batch anomaly
  score (from ``scores.jsonl`` of ``python -m riskservice score``).

The counts are those of the recording: under a stricter limit fewer shares
would have consumed quota, so later counts would be lower. The proposal is
therefore checked with the exact replay of :mod:`riskservice.backtest`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from riskservice.policy.model import Rules

__all__ = ["COUNT_RULES", "TUNABLE", "Observation", "observe"]

# Count rules: what each counts, per which key.
COUNT_RULES = ("device_velocity", "device_daily_cap", "user_daily_cap", "device_many_users", "fan_out")
# Every rule calibrate can propose a threshold for (graph_anomaly needs the batch scores).
TUNABLE = (*COUNT_RULES, "graph_anomaly")


@dataclass(frozen=True)
class Observation:
    """One labelled share and what each tunable rule saw on it."""

    decision_id: str
    fraud: bool
    values: dict[str, float]


def _recorded(ev: dict[str, Any]) -> tuple[int, int]:
    """Recording order: the stream id when the line has one, else the time."""
    seq = ev.get("seq")
    if seq:
        ms, _, n = str(seq).partition("-")
        return int(ms), int(n or 0)
    return round(ev["ts"] * 1000), 0


def _consumed(ev: dict[str, Any]) -> bool:
    # (a pass that a ban held counted nothing)
    return ev.get("decision") == "allow" or (ev.get("challenge_passed") is True and not ev.get("challenge_held"))


def _fan_out(ev: dict[str, Any]) -> int:
    recipients = ev.get("recipients")
    return len(set(recipients)) if recipients else int(ev.get("recipient_count") or 0)


def observe(events: Iterable[dict[str, Any]], rules: Rules,
            scores: dict[tuple[str, str], float] | None = None) -> list[Observation]:
    """Every labelled share (``label`` fraud or legit) with the value each tunable rule saw on it.

    Parameters
    ----------
    events : iterable of dict
        Exported share events, any order (they are sorted by recording order).
    rules : Rules
        The policy's default rules (their windows).
    scores : dict, optional
        ``(kind, node) -> anomaly`` of the batch scores; without it, no ``graph_anomaly`` values.
    """
    ordered = sorted(events, key=_recorded)
    windows = {name: getattr(rules, name).window_s * 1000 for name in COUNT_RULES if name != "fan_out"}
    logs: dict[tuple[str, str], deque[tuple[int, str]]] = {}
    users_on: dict[tuple[str, str], Counter[str]] = {}
    out: list[Observation] = []
    for ev in ordered:
        ms = round(ev["ts"] * 1000)
        device, user = str(ev.get("device_id") or ""), str(ev.get("user_id") or "")
        values: dict[str, float] = {"fan_out": _fan_out(ev) if rules.fan_out.applies_to(ev.get("channel")) else 0}
        for name, window in windows.items():
            key = (name, user if name == "user_daily_cap" else device)
            log = logs.setdefault(key, deque())
            seen = users_on.setdefault(key, Counter())
            while log and log[0][0] <= ms - window:
                _, old = log.popleft()
                seen[old] -= 1
                if not seen[old]:
                    del seen[old]
            if name == "device_many_users":
                values[name] = len(seen) + (0 if user in seen else 1)
            else:
                values[name] = len(log) + 1
            if _consumed(ev):
                log.append((ms, user))
                seen[user] += 1
        if scores is not None:
            values["graph_anomaly"] = max(scores.get(("device", device), 0.0), scores.get(("user", user), 0.0))
        if ev.get("label") in ("fraud", "legit"):
            out.append(Observation(str(ev["decision_id"]), ev["label"] == "fraud", values))
    return out
