"""``decide.lua``'s arguments (part of the script contract,
:mod:`riskservice.limits.contract`, which exports them too).

The engine names what it gives a decision in :class:`DecideArgs`; the
script receives it as :class:`DecideArgv`: five arguments (seven on Redis
Cluster), the small ones packed as one :class:`DecideCall` and the ones the
script only stores as one :class:`RecordStatic` (the caller's part of the
decision record, written as-is). Every argument costs the script time on the
single-threaded server (Redis builds a Lua string of each on every call).
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

__all__ = ["DECIDE_CALL_FORMAT", "DecideArgs", "DecideArgv", "DecideCall", "RecordStatic"]


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
    arms: str
    # On Redis Cluster: the user side's findings (contract.user_side); "" on one Redis.
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
                          self.request, self.user_side, self.user_graph)

    def wire(self, record: bytes | None = None) -> tuple[Any, ...]:
        """:meth:`argv` as sent: without the trailing cluster-only ones when empty
        (every argument costs the script about 1 k instructions)."""
        argv = (self.plan, self.call().pack(), self.record_static().pack() if record is None else record,
                self.request)
        if self.user_graph != "":
            return (*argv, self.user_side, self.user_graph)
        if self.user_side != "":
            return (*argv, self.user_side)
        return argv
