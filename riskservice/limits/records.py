"""What the scripts store: decision records and packed logs, decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Status = Literal["new", "replay", "conflict"]


@dataclass(frozen=True)
class DecisionRecord:
    """What the store decided for one event (stored for replays)."""

    status: Status
    decision_id: str
    ts_ms: int
    decision: int
    challenge: str
    findings: list[list[Any]]
    # Window rule -> (count after this decision, ms until its oldest entry leaves).
    windows: dict[str, tuple[int, int]]
    policy_version: str
    consumed: bool
    raw: dict[str, Any] | None = field(default=None, compare=False)

    @staticmethod
    def parse(raw: bytes | str) -> dict[str, Any] | None:
        """A stored record as a dict (None for an empty reply)."""
        return orjson.loads(raw) if raw else None

    @classmethod
    def from_json(cls, status: Status, raw: bytes | str) -> DecisionRecord:
        rec = orjson.loads(raw)
        findings = rec["f"] if isinstance(rec["f"], list) else []  # cjson writes [] as {}
        windows = {code: (int(c), int(r)) for code, (c, r) in (rec.get("n") or {}).items()}
        return cls(status, rec["id"], int(rec["t"]), int(rec["dec"]), rec["ch"], findings, windows,
                   rec["pv"], bool(rec["c"]), rec)


def decode_log(raw: bytes) -> list[int]:
    """A packed share log: 6-byte big-endian ms timestamps."""
    return [int.from_bytes(raw[i:i + 6], "big") for i in range(0, len(raw), 6)]


def decode_device_state(raw: bytes | None) -> tuple[list[int], dict[str, int]]:
    """A device's packed window state (see ``lua/common.lua``): its share log
    and the users seen on it with when each last shared."""
    if not raw:
        return [], {}
    n = int.from_bytes(raw[:2], "big")
    pos = 2 + 6 * n
    log = decode_log(raw[2:pos])
    users = {}
    while pos < len(raw):
        ts = int.from_bytes(raw[pos:pos + 6], "big")
        length = int.from_bytes(raw[pos + 6:pos + 8], "big")
        users[raw[pos + 8:pos + 8 + length].decode()] = ts
        pos += 8 + length
    return log, users
