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
  (``RECORD_DECIDED_FORMAT``), then results (``RECORD_RESULT_FORMAT``),
  then, for a challenged share only, its position (``RECORD_POSITION_FORMAT``).
  Records of the previous release were hashes whose fields are
  :data:`RECORD_FIELDS`; they are still read until they expire.
- ``decide.lua``'s arguments: :class:`DecideArgs` in Python, sent as
  :class:`DecideArgv` (the fewer, packed arguments the script names).
- The stateful findings a script fires are packed (``FINDING_FORMAT``,
  :func:`decode_findings`): encoding them as JSON with ``cjson`` cost a
  refused decision more than all its window arithmetic. On Redis Cluster
  the user side's findings (``reserve.lua``, the ip's ban) reach the
  device's slot packed the same way (:func:`user_side`).

Packing uses only ``>``, ``B``, ``H``, ``I`` and ``d`` (and byte strings
preceded by their length), which Python's :mod:`struct` and Redis' Lua
``struct`` library read identically (big endian, 1-, 2- and 4-byte unsigned
integers, 8-byte doubles, no padding).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

# decide.lua's arguments: named types of their own module, part of this contract.
from riskservice.limits.decide_args import DECIDE_CALL_FORMAT, DecideArgs, DecideArgv, DecideCall, RecordStatic

__all__ = [
    "CHALLENGES",
    "DECIDE_CALL_FORMAT",
    "FINDING_FORMAT",
    "FIRST_SIGNAL",
    "NONE_F64",
    "PLAN_FORMAT",
    "PLAN_HEADER_FORMAT",
    "RECORD_ALLOWLISTED",
    "RECORD_DECIDED_FORMAT",
    "RECORD_FIELDS",
    "RECORD_HELD",
    "RECORD_POSITION",
    "RECORD_POSITION_FORMAT",
    "RECORD_RECONCILED",
    "RECORD_RESULTS",
    "RECORD_RESULT_FORMAT",
    "RECORD_STATIC_FORMAT",
    "RULES",
    "RULE_FORMAT",
    "SIGNAL_FIELDS",
    "SPLIT_MARK",
    "DecideArgs",
    "DecideArgv",
    "DecideCall",
    "Plan",
    "RecordStatic",
    "RulePlan",
    "decode_findings",
    "decode_windows",
    "encode_findings",
    "rule_id",
    "signal_field",
    "user_side",
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
# The bits of "none" as the scripts and the native decide write it (a Lua
# 0/0 on x86_64); Python's float("nan") packs with the sign bit clear.
NONE_F64 = bytes.fromhex("fff8000000000000")
# decide.lua's user_side on Redis Cluster starts with this byte, then the
# user side's packed findings: "S" alone when none fired ("" is one Redis).
SPLIT_MARK = b"S"

# A decision record (a string, in the device's slot), in parts, each a
# struct format without its byte order (``>``), as the scripts write them:
# - the caller's part, stored as sent (RecordStatic): fingerprint, decision
#   id, user id, policy version, merchant id (each uint16 length, bytes),
#   recipients (uint32), stateless findings (uint32 length, JSON bytes);
RECORD_STATIC_FORMAT = "Hc0Hc0Hc0Hc0Hc0IIc0"
# - the script's: time (6-byte ms), decision, challenge (index in CHALLENGES),
#   consumed (0/1; a passed challenge sets it), flags (bits below: 1
#   allowlisted, 2 reconciled after an outage, 4 a position follows the
#   results, 8 / 16 a pass that a ban kept from counting, RECORD_HELD),
#   window counts ("n" below), packed stateful findings ("fd"),
#   graph scores ("g"), each uint16 length, bytes;
RECORD_DECIDED_FORMAT = "I6BBBBHc0Hc0Hc0"
# - present once a challenge result or an outcome arrived (and from the
#   start, empty, before a position): the result (index in RECORD_RESULTS),
#   its time (6-byte ms), the outcome ("o" below, uint16 length, bytes;
#   empty for none).
RECORD_RESULT_FORMAT = "BI6Hc0"
RECORD_RESULTS: tuple[str, ...] = ("", "passed", "failed")
# - with the flag RECORD_POSITION only (a challenged share that had a
#   position): lat and lon (two doubles) after the results, where a passed
#   challenge moves the device (challenge.lua). After the results, not
#   before them, so that a reader of the previous layout (an older process
#   during a rolling upgrade, which reads the results right after the graph
#   scores and nothing after them) still reads such a record right. Such a
#   process writes the record back without the position when it records a
#   result, the flag kept: readers take the position only when its 16 bytes
#   are there.
RECORD_POSITION_FORMAT = "dd"
# The bits of the decided part's flags byte.
RECORD_ALLOWLISTED, RECORD_RECONCILED, RECORD_POSITION = 1, 2, 4
# A challenge passed while a ban blocked the device is recorded, not counted
# (challenge.lua): the bit names the ban by the code of the decisions it
# blocks. (The previous release's hash records hold the code in ``held``.)
RECORD_HELD: dict[str, int] = {"device_blocklist": 8, "challenge_failures": 16}

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
    "p": "[lat, lon] of a challenged share with a position: where a passed challenge moves the device",
    "held": "the ban that kept a passed challenge from counting: 'device_blocklist' or 'challenge_failures'",
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


def _f64(x: float | int | None) -> bytes:
    return NONE_F64 if x is None or (isinstance(x, float) and math.isnan(x)) else struct.pack(">d", x)


def encode_findings(findings: list[list[Any]]) -> bytes:
    """Findings packed as the scripts pack them (``FINDING_FORMAT``): the
    inverse of :func:`decode_findings`, for findings made outside a script
    (the ip's ban on Redis Cluster).

    >>> finding = ["ip_blocklist", 2, 0, "", "proxy farm", None, None, 0]
    >>> decode_findings(encode_findings([finding])) == [finding]
    True
    """
    parts = []
    for f in findings:
        code, observed = f[0].encode(), f[4]
        text = observed.encode() if isinstance(observed, str) else b""
        parts += [_FINDING_HEAD.pack(len(code)), code,
                  struct.pack(">BBBB", f[1], f[2], CHALLENGES.index(f[3] or ""), int(isinstance(observed, str))),
                  NONE_F64 if isinstance(observed, str) else _f64(observed), struct.pack(">H", len(text)), text,
                  _f64(f[5]), _f64(f[6]), _f64(f[7]), _f64(f[8] if len(f) > 8 else None)]
    return b"".join(parts)


def user_side(packed_findings: bytes) -> bytes:
    """decide.lua's ``user_side`` on Redis Cluster: :data:`SPLIT_MARK`, then
    the user side's packed findings (none: the mark alone).

    >>> user_side(b"")
    b'S'
    """
    return SPLIT_MARK + packed_findings


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
