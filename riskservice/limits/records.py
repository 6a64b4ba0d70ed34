"""What the scripts store: decision records and packed logs, decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from riskservice.limits.contract import decode_findings, decode_windows

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
    def parse(flat: list[bytes | int]) -> dict[str, Any] | None:
        """A stored record (a hash, as a flat field/value list) as a dict; None when empty.

        Numbers are ints, ``o`` (an outcome) is ``[delivered, opened, claimed, ms]``,
        ``g`` (graph scores) is ``[anomaly, kol]`` or None, and ``f`` holds every
        finding: the stateless ones, then the stateful ones.
        """
        if not flat:
            return None
        # HGETALL gives bytes; a fresh record comes back from the script with
        # its numbers as integers.
        raw = {_bytes(flat[i]).decode(): _bytes(flat[i + 1]) for i in range(0, len(flat), 2)}
        rec: dict[str, Any] = {k: v.decode() for k, v in raw.items() if k not in ("n", "fs", "fd")}
        for name in ("t", "dec", "c", "r", "ct", "al"):
            if name in rec:
                rec[name] = int(rec[name] or 0)
        if "o" in rec:
            rec["o"] = [int(x) for x in rec["o"].split(",")]
        rec["g"] = [float(x) for x in rec["g"].split(",")] if rec.get("g") else None
        findings = _findings(raw.get("fs", b"")) + _stateful(raw.get("fd", b""))
        if rec.get("al"):
            # An allowlisted device: its challenges are reported as shadow.
            for f in findings:
                if f[1] == 1:
                    f[2] = 1
        rec["f"] = findings
        rec["n"] = decode_windows(raw.get("n", b""))
        return rec

    @classmethod
    def from_reply(cls, status: Status, flat: list[bytes | int], sent: dict[str, bytes | str] | None = None
                   ) -> DecisionRecord:
        """A record from a script's reply; ``sent``: the fields the caller sent,
        which a new record's reply leaves out (id, pv, fs, ...)."""
        if sent:
            flat = [*flat]
            for name, value in sent.items():
                flat += [name.encode(), value if isinstance(value, bytes) else value.encode()]
        rec = cls.parse(flat)
        assert rec is not None
        return cls(status, rec["id"], rec["t"], rec["dec"], rec["ch"], rec["f"], rec["n"], rec["pv"],
                   bool(rec["c"]), rec)


def _bytes(value: bytes | int) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _findings(raw: bytes) -> list[list[Any]]:
    # cjson writes an empty list as {}; an empty field means none.
    if not raw or raw == b"{}":
        return []
    return list(orjson.loads(raw))


def _stateful(raw: bytes) -> list[list[Any]]:
    # Records written before the findings were packed hold JSON (they live
    # for the decision TTL, so an upgrade meets both).
    if raw[:1] in (b"[", b"{"):
        return _findings(raw)
    return decode_findings(raw)


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
