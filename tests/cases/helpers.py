"""Helpers for the case tests: planted groups of share events, and cases as the batch job stores them."""

from __future__ import annotations

from typing import Any

from graphs.cases.build import build_cases
from graphs.events.jsonl import read_events
from graphs.scorers.score import score_table

DAY = 86_400.0
FIRST_MS = 1_763_800_000_000  # evidence times of hand-made cases (epoch ms)


def farm(prefix: str = "f", accounts: int = 12, devices: int = 1, coupon: str = "cp_12") -> list[dict[str, Any]]:
    """``accounts`` accounts taking turns on ``devices`` phones (two each, so one group), each sharing
    twice to a recipient of its own."""
    return [{"user_id": f"{prefix}u{i}", "device_id": f"{prefix}phone{(i + k) % devices}", "coupon_id": coupon,
             "ts": 1_000.0 + 600.0 * i + 300.0 * k, "recipients": [f"{prefix}r{i}"]}
            for i in range(accounts) for k in range(2)]


def star(prefix: str = "s", sinks: int = 60) -> list[dict[str, Any]]:
    """One sprayer sharing to the same pool of sinks again and again, none of them claiming."""
    return [{"user_id": f"{prefix}sprayer", "device_id": f"{prefix}dev", "coupon_id": "cp_7", "ts": 5_000.0 + 600 * k,
             "recipients": [f"{prefix}sink{(k * 3 + j) % sinks}" for j in range(10)], "delivered": 10, "claimed": 0}
            for k in range(80)]


def organic(n: int = 60) -> list[dict[str, Any]]:
    """Ordinary users on their own phones, sharing to friends who claim."""
    return [{"user_id": f"o{i}", "device_id": f"od{i}", "coupon_id": f"oc{i % 5}", "ts": 3_000.0 + 3_600.0 * i,
             "recipients": [f"o{(i + 1) % n}", f"o{(i + 7) % n}"], "delivered": 2, "claimed": 1} for i in range(n)]


def cases_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return build_cases(score_table(read_events(events)))


def member(node: str, kind: str = "user", anomaly: float = 0.9, kol: float = 0.1) -> dict[str, Any]:
    return {"node": node, "kind": kind, "anomaly": anomaly, "kol": kol}


def case(users: list[str], devices: list[str] = (), score: float = 5.0, kind: str = "farm",  # type: ignore[assignment]
         summary: str = "a planted group") -> dict[str, Any]:
    """A case as ``graphs.cases`` hands it to the write-back (no id yet)."""
    members = [member(d, "device") for d in devices] + [member(u) for u in users]
    edges = [{"kind": "device", "source": devices[0], "source_kind": "device", "target": u, "target_kind": "user",
              "shares": 2, "first_ts": FIRST_MS, "last_ts": FIRST_MS + 86_400_000} for u in users] if devices else []
    nodes = [{"id": m["node"], "kind": m["kind"], "anomaly": m["anomaly"], "kol": m["kol"]} for m in members]
    sub = [{"source": e["source"], "source_kind": "device", "target": e["target"], "target_kind": "user",
            "kind": "device", "weight": 2.0} for e in edges]
    return {"kind": kind, "score": score, "summary": summary, "members": members,
            "stats": {"users": len(users), "devices": len(devices)},
            "evidence": {"edges": edges, "total": len(edges), "truncated": False},
            "subgraph": {"nodes": nodes, "edges": sub, "truncated": False}}
