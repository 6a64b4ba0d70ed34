"""What the scripts store: decision records and packed logs, decoded."""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson

from riskservice.limits.contract import (
    CHALLENGES,
    RECORD_ALLOWLISTED,
    RECORD_HELD,
    RECORD_POSITION,
    RECORD_POSITION_FORMAT,
    RECORD_RECONCILED,
    RECORD_RESULTS,
    RecordStatic,
    decode_findings,
    decode_windows,
)
from riskservice.limits.keys import legacy_pointer_key, record_key, user_log_key

Status = Literal["new", "replay", "conflict"]
_POSITION = struct.Struct(">" + RECORD_POSITION_FORMAT)


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
    def parse(flat: bytes | list[bytes | int]) -> dict[str, Any] | None:
        """A stored record as a dict; None when empty. The record is the packed
        string the scripts write (``contract.RECORD_*_FORMAT``), or a hash of
        the previous release as a flat field/value list (HGETALL).

        Numbers are ints, ``o`` (an outcome) is ``[delivered, opened, claimed, ms]``,
        ``g`` (graph scores) is ``[anomaly, kol]`` or None, ``p`` (a challenged
        share's position, when it had one) is ``[lat, lon]``, and ``f`` holds
        every finding: the stateless ones, then the stateful ones.
        """
        if not flat:
            return None
        if isinstance(flat, bytes):
            return unpack_record(flat)
        # HGETALL gives bytes; a fresh record came back from the script with
        # its numbers as integers.
        raw = {_bytes(flat[i]).decode(): _bytes(flat[i + 1]) for i in range(0, len(flat), 2)}
        rec: dict[str, Any] = {k: v.decode() for k, v in raw.items() if k not in ("n", "fs", "fd")}
        for name in ("t", "dec", "c", "r", "ct", "al"):
            if name in rec:
                rec[name] = int(rec[name] or 0)
        if "o" in rec:
            rec["o"] = [int(x) for x in rec["o"].split(",")]
        rec["g"] = [float(x) for x in rec["g"].split(",")] if rec.get("g") else None
        rec["f"] = _allowlisted(_findings(raw.get("fs", b"")) + _stateful(raw.get("fd", b"")), bool(rec.get("al")))
        rec["n"] = decode_windows(raw.get("n", b""))
        return rec

    @classmethod
    def new(cls, reply: bytes, sent: RecordStatic) -> DecisionRecord:
        """A new decision from the script's reply (its part of the record only)
        and ``sent``, the caller's part as given to the script: what
        :meth:`from_reply` gives for ``sent.pack() + reply``, without decoding
        again what the caller already holds."""
        rec = _unpack_decided(reply, 0, {
            "fp": sent.fingerprint, "id": sent.decision_id, "u": sent.user_id, "pv": sent.policy_version,
            "m": sent.merchant_id, "r": sent.recipients}, sent.static_findings)
        return cls("new", rec["id"], rec["t"], rec["dec"], rec["ch"], rec["f"], rec["n"], rec["pv"],
                   bool(rec["c"]), rec)

    @classmethod
    def from_reply(cls, status: Status, reply: bytes | list[bytes | int], sent: bytes = b"") -> DecisionRecord:
        """A record from a script's reply; ``sent``: the caller's part of the
        record (``RecordStatic.pack()``), which a new record's reply leaves
        out (the reply is then the script's part only)."""
        if sent and isinstance(reply, bytes):
            reply = sent + reply
        rec = cls.parse(reply)
        assert rec is not None
        return cls(status, rec["id"], rec["t"], rec["dec"], rec["ch"], rec["f"], rec["n"], rec["pv"],
                   bool(rec["c"]), rec)


class RecordLocation(NamedTuple):
    """Where a decision's record is and whose share it was: what an outcome
    or a challenge result needs before its script runs."""

    key: str
    merchant_id: str | None
    user_log: str


def record_owner(raw: bytes) -> tuple[str, str, str]:
    """The decision id, user id and merchant id ("" none) at the head of a
    packed record (``contract.RECORD_STATIC_FORMAT``), without decoding the rest.

    >>> from riskservice.limits.contract import RecordStatic
    >>> record_owner(RecordStatic("fp", "d1", "u1", "v1", "m1", 2, b"").pack())
    ('d1', 'u1', 'm1')
    """
    parts = []
    pos = 0
    for _ in range(5):  # fingerprint, decision id, user id, policy version, merchant id
        end = pos + 2 + int.from_bytes(raw[pos:pos + 2], "big")
        parts.append(raw[pos + 2:end])
        pos = end
    return parts[1].decode(), parts[2].decode(), parts[4].decode()


def locate(decision_id: str, key: str, raw: bytes | None) -> RecordLocation | None:
    """The location of ``decision_id``'s record, given what ``GET key`` returned
    for the key it names (:func:`record_key`): None unless the record there
    was stored under this very id (another id naming the same event and
    device, a guessed one, is not its own)."""
    if not raw:
        return None
    stored, user_id, merchant_id = record_owner(raw)
    if not hmac.compare_digest(stored, decision_id):
        return None
    return RecordLocation(key, merchant_id or None, user_log_key(user_id))


def find_record(decision_id: str, get: Callable[[str], bytes | None]) -> RecordLocation | None:
    """Where ``decision_id``'s record is, reading one key with ``get`` (a
    ``GET``; None for a missing key or one of another type): the key the id
    names, or the pointer an id of the previous release had. None for an id
    that names no record of its own."""
    legacy = legacy_pointer_key(decision_id)
    if legacy is not None:
        return legacy_location(get(legacy))
    key = record_key(decision_id)
    return None if key is None else locate(decision_id, key, get(key))


def legacy_location(raw: bytes | None) -> RecordLocation | None:
    """A location as the previous release's pointer held it (``{k, m, u}`` JSON)."""
    if not raw:
        return None
    where = orjson.loads(raw)
    return RecordLocation(where["k"], where.get("m"), where["u"])


def _allowlisted(findings: list[list[Any]], allowlisted: bool) -> list[list[Any]]:
    """An allowlisted device's challenges are reported as shadow."""
    if allowlisted:
        for f in findings:
            if f[1] == 1:
                f[2] = 1
    return findings


def unpack_record(raw: bytes) -> dict[str, Any]:
    """A packed decision record (``contract.RECORD_*_FORMAT``) as the reader's
    dict (see :meth:`DecisionRecord.parse`), decoded straight to its types:
    this runs on every decision, so no field goes through text on the way.

    >>> from riskservice.limits.contract import RecordStatic
    >>> import struct
    >>> static = RecordStatic("fp", "d1", "u1", "v1", "m1", 2, b"").pack()
    >>> decided = struct.pack(">6sBBBBH0sH0sH3s", (1500).to_bytes(6, "big"), 1, 1, 0, 0, 0, b"", 0, b"", 3, b"0,0")
    >>> rec = unpack_record(static + decided)
    >>> rec["id"], rec["t"], rec["dec"], rec["ch"], rec["r"], rec["g"], rec["f"], "o" in rec
    ('d1', 1500, 1, 'captcha', 2, [0.0, 0.0], [], False)
    """
    rec: dict[str, Any] = {}
    pos = 0
    for name in ("fp", "id", "u", "pv", "m"):
        end = pos + 2 + int.from_bytes(raw[pos:pos + 2], "big")
        rec[name] = raw[pos + 2:end].decode()
        pos = end
    rec["r"] = int.from_bytes(raw[pos:pos + 4], "big")
    end = pos + 8 + int.from_bytes(raw[pos + 4:pos + 8], "big")
    return _unpack_decided(raw, end, rec, raw[pos + 8:end])


def _unpack_decided(raw: bytes, pos: int, rec: dict[str, Any], static: bytes) -> dict[str, Any]:
    """Add the script's part of a packed record, from ``pos``, to ``rec`` (the
    caller's part, decoded); ``static``: the stateless findings (JSON)."""
    rec["t"] = int.from_bytes(raw[pos:pos + 6], "big")
    dec, ch, consumed, flags = raw[pos + 6:pos + 10]
    rec["dec"], rec["ch"], rec["c"] = dec, CHALLENGES[ch], consumed
    if flags & RECORD_ALLOWLISTED:
        rec["al"] = 1
    if flags & RECORD_RECONCILED:
        rec["rec"] = "1"
    for code, bit in RECORD_HELD.items():
        if flags & bit:
            rec["held"] = code
    pos += 10
    parts = []
    for _ in range(3):  # windows, stateful findings, graph scores
        end = pos + 2 + int.from_bytes(raw[pos:pos + 2], "big")
        parts.append(raw[pos + 2:end])
        pos = end
    windows, stateful, graph = parts
    rec["g"] = [float(x) for x in graph.split(b",")] if graph else None
    if pos < len(raw):
        result = raw[pos]
        if result:
            rec["cs"] = RECORD_RESULTS[result]
            rec["ct"] = int.from_bytes(raw[pos + 1:pos + 7], "big")
        end = pos + 9 + int.from_bytes(raw[pos + 7:pos + 9], "big")
        if end > pos + 9:
            rec["o"] = [int(x) for x in raw[pos + 9:end].split(b",")]
        # (an older process that recorded a result dropped the position and kept the flag)
        if flags & RECORD_POSITION and len(raw) >= end + _POSITION.size:
            rec["p"] = list(_POSITION.unpack_from(raw, end))
    rec["f"] = _allowlisted(_findings(static) + _stateful(stateful), bool(flags & RECORD_ALLOWLISTED))
    rec["n"] = decode_windows(windows)
    return rec


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
