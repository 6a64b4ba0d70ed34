"""The contract between Python and the Lua scripts: named types for what
crosses the boundary, and the one format each is packed in.

- :class:`Plan`: one merchant's stateful rules, compiled once per policy and
  packed as a fixed binary layout (``PLAN_FORMAT``). The scripts unpack it
  with one ``struct.unpack``: decoding a JSON plan on every call was the
  largest single cost of a decision in Redis.
- Stateful rules are numbered (``RULES``); the scripts name them by the same
  table (``CODES`` in ``lua/common.lua``), which a test compares with this one.
- A decision record is one string (``SET ... PX``): the caller's part
  (:class:`RecordStatic`, ``RECORD_STATIC_FORMAT``) as sent, the script's
  (``RECORD_DECIDED_FORMAT``), then results (``RECORD_RESULT_FORMAT``).
  Records of the previous release were hashes whose fields are
  :data:`RECORD_FIELDS`; they are still read until they expire.
- ``decide.lua``'s arguments: :class:`DecideArgs` in Python, sent as
  :class:`DecideArgv` (the fewer, packed arguments the script names).
- The stateful findings a script fires are packed (``FINDING_FORMAT``,
  :func:`decode_findings`): encoding them as JSON with ``cjson`` cost a
  refused decision more than all its window arithmetic.

Packing uses only ``>``, ``B``, ``H``, ``I`` and ``d`` (and byte strings
preceded by their length), which Python's :mod:`struct` and Redis' Lua
``struct`` library read identically (big endian, 1-, 2- and 4-byte unsigned
integers, 8-byte doubles, no padding).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "CHALLENGES",
    "DECIDE_CALL_FORMAT",
    "FINDING_FORMAT",
    "FIRST_SIGNAL",
    "PLAN_FORMAT",
    "PLAN_HEADER_FORMAT",
    "RECORD_DECIDED_FORMAT",
    "RECORD_FIELDS",
    "RECORD_RESULTS",
    "RECORD_RESULT_FORMAT",
    "RECORD_STATIC_FORMAT",
    "RULES",
    "RULE_FORMAT",
    "SIGNAL_FIELDS",
    "DecideArgs",
    "DecideArgv",
    "DecideCall",
    "Plan",
    "RecordStatic",
    "RulePlan",
    "decode_findings",
    "decode_windows",
    "rule_id",
    "signal_field",
]

# Stateful rules, by id (1-based, the scripts' order of evaluation).
RULES: tuple[str, ...] = (
    "device_velocity",     # 1  device share log
    "device_daily_cap",    # 2  device share log
    "user_daily_cap",      # 3  user share log
    "device_many_users",   # 4  distinct users on the device
    "low_success_rate",    # 5  outcomes of the device's shares (limit: min samples, extra: threshold)
    "impossible_travel",   # 6  last position (limit: km/h, extra: min km)
    "graph_anomaly",       # 7  batch scores (limit: threshold)
    "device_blocklist",    # 8  device ban
    "user_blocklist",      # 9  user ban
    "ip_blocklist",        # 10 ip ban
    # --- BEGIN real-time signals (issue 10): observed values the signal
    # consumer (riskservice/signals/) writes into the device's `:sig` hash;
    # limit: the threshold. Field names in SIGNAL_FIELDS. ---
    "device_rotation",     # 11 distinct users on the device over days
    "lockstep",            # 12 partners met in bursts of the same coupon, on several coupons
    "sink_feeder",         # 13 distinct sinks (many sharers, claim nearly all) the sharer feeds
    "dead_recipients",     # 14 recipients who got repeated unclaimed shares from the sharer
    "coupon_repeat",       # 15 shares of one coupon by the sharer in a window
    # --- END real-time signals ---
)
# --- BEGIN real-time signals (issue 10) ---
# The first signal rule's id, and per signal rule its field in the device's
# `:sig` hash: "<field>" for a device signal, "<field>|<user id>" for a
# sharer's (the consumer copies a sharer's values onto the hashes of the
# devices it shares from, so a decision reads one key in the device's slot).
FIRST_SIGNAL = 11
SIGNAL_FIELDS: dict[str, tuple[str, bool]] = {
    "device_rotation": ("r", False),
    "lockstep": ("l", True),
    "sink_feeder": ("f", True),
    "dead_recipients": ("d", True),
    "coupon_repeat": ("c", True),
}


def signal_field(code: str, user_id: str) -> str:
    """The `:sig` hash field of a signal rule for a share by ``user_id``.

    >>> signal_field("lockstep", "u1"), signal_field("device_rotation", "u1")
    ('l|u1', 'r')
    """
    name, per_user = SIGNAL_FIELDS[code]
    return f"{name}|{user_id}" if per_user else name
# --- END real-time signals ---

# Challenge kinds as packed: 0 none.
CHALLENGES: tuple[str, ...] = ("", "captcha", "sms")

# Per rule: enabled, limit, window ms, severity, shadow, challenge, extra.
RULE_FORMAT = "BdIBBBd"
# Then: device log cap and keep ms, user log cap and keep ms, users cap and
# keep ms, review points, cool-down severity/shadow/challenge, challenge
# failures limit / window ms / cool-down ms.
PLAN_HEADER_FORMAT = "HIHIHIHBBBHII"
PLAN_FORMAT = ">" + RULE_FORMAT * len(RULES) + PLAN_HEADER_FORMAT

# One stateful finding as the scripts pack it, findings one after another:
# code (uint8 length, bytes), severity, shadow, challenge (index in
# CHALLENGES), observed kind (0 a number, 1 text), observed number, observed
# text (uint16 length, bytes), limit, window s, retry ms, detail. A NaN
# double is "none" (JSON null; a missing detail).
FINDING_FORMAT = ">B{code}sBBBBdH{text}sdddd"
_FINDING_HEAD = struct.Struct(">B")
_FINDING_FLAGS = struct.Struct(">BBBBdH")
_FINDING_TAIL = struct.Struct(">dddd")

# A decision record (a string, in the device's slot), in three parts, each a
# struct format without its byte order (``>``), as the scripts write them:
# - the caller's part, stored as sent (RecordStatic): fingerprint, decision
#   id, user id, policy version, merchant id (each uint16 length, bytes),
#   recipients (uint32), stateless findings (uint32 length, JSON bytes);
RECORD_STATIC_FORMAT = "Hc0Hc0Hc0Hc0Hc0IIc0"
# - the script's: time (6-byte ms), decision, challenge (index in CHALLENGES),
#   consumed (0/1; a passed challenge sets it), flags (1 allowlisted,
#   2 reconciled after an outage), window counts ("n" below), packed
#   stateful findings ("fd"), graph scores ("g"), each uint16 length, bytes;
RECORD_DECIDED_FORMAT = "I6BBBBHc0Hc0Hc0"
# - present once a challenge result or an outcome arrived: the result (index
#   in RECORD_RESULTS), its time (6-byte ms), the outcome ("o" below, uint16
#   length, bytes; empty for none).
RECORD_RESULT_FORMAT = "BI6Hc0"
RECORD_RESULTS: tuple[str, ...] = ("", "passed", "failed")

# Fields of a decision record as the readers see it (and the hash fields of
# records the previous release wrote).
RECORD_FIELDS: dict[str, str] = {
    "id": "decision id",
    "t": "decision time, ms",
    "dec": "0 allow, 1 challenge, 2 block",
    "ch": "challenge kind ('' none)",
    "fs": "stateless findings (JSON list, as the app sent them)",
    "fd": "stateful findings, packed (FINDING_FORMAT; absent when none fired)",
    "n": "window counts: per enabled count rule, uint8 rule id, uint32 count, uint32 ms until its oldest "
         "entry leaves",
    "pv": "policy version",
    "c": "1 if the share consumed quota",
    "fp": "request fingerprint",
    "u": "user id",
    "m": "merchant id",
    "r": "recipients",
    "g": "graph scores at decision time, 'anomaly,kol' ('' not scored)",
    "o": "outcome 'delivered,opened,claimed,ms' (outcome.lua)",
    "cs": "challenge result 'passed' / 'failed' (challenge.lua)",
    "ct": "challenge result time, ms",
    "al": "1 if the device was allowlisted: its challenge findings are shadow",
    "rec": "1 if the share was allowed during an outage and counted afterwards (reconcile.lua)",
}


def rule_id(code: str) -> int:
    """The 1-based id of a stateful rule.

    >>> rule_id("user_daily_cap")
    3
    """
    return RULES.index(code) + 1


@dataclass(frozen=True)
class RulePlan:
    """One stateful rule as the scripts see it."""

    enabled: bool = False
    limit: float = 0.0
    window_ms: int = 0
    severity: int = 0
    shadow: bool = False
    challenge: str = ""
    extra: float = 0.0

    def values(self) -> tuple[Any, ...]:
        return (int(self.enabled), float(self.limit), int(self.window_ms), self.severity, int(self.shadow),
                CHALLENGES.index(self.challenge), float(self.extra))


@dataclass(frozen=True)
class Plan:
    """A merchant's stateful rules and the store bounds, for the scripts."""

    rules: dict[str, RulePlan] = field(default_factory=dict)
    device_log_cap: int = 0
    device_log_keep_ms: int = 0
    user_log_cap: int = 0
    user_log_keep_ms: int = 0
    users_cap: int = 0
    users_keep_ms: int = 0
    review_points: int = 0
    # How a ban with code challenge_failures (the cool-down) is reported.
    cooldown: RulePlan = field(default_factory=RulePlan)
    failures_limit: int = 0
    failures_window_ms: int = 0
    cooldown_ms: int = 0

    def pack(self) -> bytes:
        """The binary layout ``PLAN_FORMAT`` the scripts unpack.

        >>> len(Plan().pack()) == struct.calcsize(PLAN_FORMAT)
        True
        """
        values: list[Any] = []
        for code in RULES:
            values.extend(self.rules.get(code, RulePlan()).values())
        values.extend((self.device_log_cap, self.device_log_keep_ms, self.user_log_cap, self.user_log_keep_ms,
                       self.users_cap, self.users_keep_ms, self.review_points, self.cooldown.severity,
                       int(self.cooldown.shadow), CHALLENGES.index(self.cooldown.challenge),
                       self.failures_limit, self.failures_window_ms, self.cooldown_ms))
        return struct.pack(PLAN_FORMAT, *values)

    @classmethod
    def unpack(cls, packed: bytes) -> Plan:
        """The inverse of :meth:`pack` (for the in-memory reference store and tests)."""
        values = struct.unpack(PLAN_FORMAT, packed)
        width = len(RULE_FORMAT)
        rules = {}
        for i, code in enumerate(RULES):
            en, limit, window, sev, shadow, ch, extra = values[i * width:(i + 1) * width]
            rules[code] = RulePlan(bool(en), limit, window, sev, bool(shadow), CHALLENGES[ch], extra)
        (dcap, dkeep, ucap, ukeep, scap, skeep, rv, cd_sev, cd_shadow, cd_ch, cf_limit, cf_window,
         cooldown_ms) = values[len(RULES) * width:]
        return cls(rules, dcap, dkeep, ucap, ukeep, scap, skeep, rv,
                   RulePlan(True, severity=cd_sev, shadow=bool(cd_shadow), challenge=CHALLENGES[cd_ch]),
                   cf_limit, cf_window, cooldown_ms)


class RecordStatic(NamedTuple):
    """The caller's part of a decision record: what it knows before the
    script runs, sent packed as one argument that the script stores as-is."""

    fingerprint: str
    decision_id: str
    user_id: str
    policy_version: str
    merchant_id: str
    recipients: int
    static_findings: bytes

    def pack(self) -> bytes:
        """``RECORD_STATIC_FORMAT``.

        >>> RecordStatic("fp", "id", "u", "v", "m", 2, b"").pack()
        b'\\x00\\x02fp\\x00\\x02id\\x00\\x01u\\x00\\x01v\\x00\\x01m\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x00'
        """
        parts = []
        for text in (self.fingerprint, self.decision_id, self.user_id, self.policy_version, self.merchant_id):
            raw = text.encode()
            parts += [_U16.pack(len(raw)), raw]
        parts += [_U32.pack(self.recipients), _U32.pack(len(self.static_findings)), self.static_findings]
        return b"".join(parts)


_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


# decide.lua's small arguments, packed into one (DecideCall; a struct format
# without its byte order): now and deadline (6-byte ms, 0 for the server
# clock / none), the record's and the share events' TTLs (6-byte ms), the
# stateless findings' verdict (block 0/1, strongest enforced challenge: 0
# none, 1 captcha, 2 sms), then device id, arms, the stateless codes and the
# position (each uint16 length, bytes).
DECIDE_CALL_FORMAT = "I6I6I6I6BBHc0Hc0Hc0Hc0"


class DecideCall(NamedTuple):
    """``decide.lua``'s small arguments, sent packed as one (``DECIDE_CALL_FORMAT``;
    the script names them the same, ``c_<name>``)."""

    now: int
    deadline: int
    ttl_ms: int
    retention_ms: int
    static_block: int
    static_challenge: int
    device_id: str
    arms: str
    static_codes: str
    # lat, lon as two doubles (``>dd``), empty without a position.
    position: bytes

    def pack(self) -> bytes:
        """``DECIDE_CALL_FORMAT``.

        >>> len(DecideCall(1, 0, 2, 3, 0, 1, "d", "", "", b"").pack())
        35
        """
        parts = [ms.to_bytes(6, "big") for ms in (self.now, self.deadline, self.ttl_ms, self.retention_ms)]
        parts.append(struct.pack(">BB", self.static_block, self.static_challenge))
        for raw in (self.device_id.encode(), self.arms.encode(), self.static_codes.encode(), self.position):
            parts += [_U16.pack(len(raw)), raw]
        return b"".join(parts)


class DecideArgv(NamedTuple):
    """``decide.lua``'s ARGV as sent, in order (the script names them the same).

    ``call`` is the packed :class:`DecideCall`, ``record`` the packed
    :class:`RecordStatic`. The two cluster-only arguments are not sent when
    empty.
    """

    plan: bytes
    call: bytes
    record: bytes
    request: bytes
    pointer: bytes
    user_side: bytes | str = ""
    user_graph: bytes | str = ""


class DecideArgs(NamedTuple):
    """What a decision script is given, by name (sent as :class:`DecideArgv`)."""

    now: str | int
    deadline: str | int
    fingerprint: str
    decision_id: str
    user_id: str
    device_id: str
    plan: bytes
    policy_version: str
    static_findings: bytes
    static_block: int
    static_challenge: int
    # Codes of the stateless findings for the share event, comma separated,
    # ":shadow" after a shadow one, "?" after an enforced challenge (which
    # the allowlist turns into shadow).
    static_codes: str
    ttl_ms: int
    request: bytes
    lat: str
    lon: str
    merchant_id: str
    recipients: int
    retention_ms: int
    pointer: bytes
    arms: str
    # On Redis Cluster: the user side's findings from reserve.lua (JSON); "" on one Redis.
    user_side: bytes | str = ""
    # On Redis Cluster: the user's graph scores, read on the user's slot; "" on one Redis.
    user_graph: bytes | str = ""

    def record_static(self) -> RecordStatic:
        """The caller's part of the record."""
        return RecordStatic(self.fingerprint, self.decision_id, self.user_id, self.policy_version,
                            self.merchant_id, self.recipients, self.static_findings)

    def call(self) -> DecideCall:
        """The small arguments, as the script unpacks them."""
        position = struct.pack(">dd", float(self.lat), float(self.lon)) if self.lat != "" else b""
        return DecideCall(int(self.now or 0), int(self.deadline or 0), self.ttl_ms, self.retention_ms,
                          self.static_block, self.static_challenge, self.device_id, self.arms, self.static_codes,
                          position)

    def argv(self, record: bytes | None = None) -> DecideArgv:
        """The arguments as the script receives them (``record``: the packed
        :meth:`record_static`, if the caller has it already)."""
        return DecideArgv(self.plan, self.call().pack(), self.record_static().pack() if record is None else record,
                          self.request, self.pointer, self.user_side, self.user_graph)

    def wire(self, record: bytes | None = None) -> tuple[Any, ...]:
        """:meth:`argv` as sent: without the trailing cluster-only ones when empty
        (every argument costs the script about 1 k instructions)."""
        argv = tuple(self.argv(record))
        end = len(argv)
        while end > len(DecideArgv._fields) - 2 and argv[end - 1] == "":
            end -= 1
        return argv[:end]


def _number(x: float) -> float | int | None:
    # cjson wrote integral doubles as integers; keep that shape.
    if math.isnan(x):
        return None
    return int(x) if x.is_integer() else x


def decode_findings(raw: bytes) -> list[list[Any]]:
    """The ``fd`` field of a record: ``[code, severity, shadow, challenge,
    observed, limit, window_s, retry]`` per finding, then ``detail`` when it
    has one (the shape of the findings in an answer's reasons).

    >>> packed = struct.pack(">B15sBBBBdH0sdddd", 15, b"device_velocity", 1, 0, 1, 0, 21.0, 0, b"",
    ...                      20.0, 300.0, 1500.0, float("nan"))
    >>> decode_findings(packed)
    [['device_velocity', 1, 0, 'captcha', 21, 20, 300, 1500]]
    """
    out: list[list[Any]] = []
    pos = 0
    while pos < len(raw):
        (n,) = _FINDING_HEAD.unpack_from(raw, pos)
        code = raw[pos + 1:pos + 1 + n].decode()
        pos += 1 + n
        severity, shadow, challenge, kind, number, text_len = _FINDING_FLAGS.unpack_from(raw, pos)
        pos += _FINDING_FLAGS.size
        text = raw[pos:pos + text_len].decode()
        pos += text_len
        limit, window, retry, detail = _FINDING_TAIL.unpack_from(raw, pos)
        pos += _FINDING_TAIL.size
        observed = text if kind == 1 else _number(number)
        finding = [code, severity, shadow, CHALLENGES[challenge], observed, _number(limit), _number(window),
                   int(retry)]
        if not math.isnan(detail):
            finding.append(_number(detail))
        out.append(finding)
    return out


def decode_windows(raw: bytes) -> dict[str, tuple[int, int]]:
    """The ``n`` field of a record: count rule -> (count, ms until its oldest entry leaves).

    >>> decode_windows(struct.pack(">BII", 1, 3, 1500))
    {'device_velocity': (3, 1500)}
    """
    out = {}
    for pos in range(0, len(raw), 9):
        rule, count, reset = struct.unpack_from(">BII", raw, pos)
        out[RULES[rule - 1]] = (count, reset)
    return out
