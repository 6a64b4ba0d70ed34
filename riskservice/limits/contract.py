"""The contract between Python and the Lua scripts: named types for what
crosses the boundary, and the one format each is packed in.

- :class:`Plan`: one merchant's stateful rules, compiled once per policy and
  packed as a fixed binary layout (``PLAN_FORMAT``). The scripts unpack it
  with one ``struct.unpack``: decoding a JSON plan on every call was the
  largest single cost of a decision in Redis.
- Stateful rules are numbered (``RULES``); the scripts name them by the same
  table (``CODES`` in ``lua/common.lua``), which a test compares with this one.
- A decision record is a Redis hash whose fields are :data:`RECORD_FIELDS`.

Packing uses only ``>``, ``B``, ``H``, ``I`` and ``d``, which Python's
:mod:`struct` and Redis' Lua ``struct`` library read identically (big endian,
1-, 2- and 4-byte unsigned integers, 8-byte doubles, no padding).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["CHALLENGES", "PLAN_FORMAT", "PLAN_HEADER_FORMAT", "RECORD_FIELDS", "RULES", "RULE_FORMAT",
           "DecideArgs", "Plan", "RulePlan", "decode_windows", "rule_id"]

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
)
# Challenge kinds as packed: 0 none.
CHALLENGES: tuple[str, ...] = ("", "captcha", "sms")

# Per rule: enabled, limit, window ms, severity, shadow, challenge, extra.
RULE_FORMAT = "BdIBBBd"
# Then: device log cap and keep ms, user log cap and keep ms, users cap and
# keep ms, review points, cool-down severity/shadow/challenge, challenge
# failures limit / window ms / cool-down ms.
PLAN_HEADER_FORMAT = "HIHIHIHBBBHII"
PLAN_FORMAT = ">" + RULE_FORMAT * len(RULES) + PLAN_HEADER_FORMAT

# Fields of a decision record (a hash, in the device's slot).
RECORD_FIELDS: dict[str, str] = {
    "id": "decision id",
    "t": "decision time, ms",
    "dec": "0 allow, 1 challenge, 2 block",
    "ch": "challenge kind ('' none)",
    "fs": "stateless findings (JSON list, as the app sent them)",
    "fd": "stateful findings (JSON list, '' when none fired)",
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


class DecideArgs(NamedTuple):
    """``decide.lua``'s ARGV, in order (the script names them the same)."""

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
