"""Gray rollout of rules (new features first to 10 % of users, as WeChat's card-coupon guide advises).

A rule with ``rollout: P`` is enforced for P % of devices and runs in shadow
for the rest. The split is a stable hash of the rule and the device, not a
coin per request: a device stays in its arm for as long as P does not change,
and raising P only moves devices from shadow to enforced. Hashing the rule
name in too keeps the arms of different rules independent.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(rule: str, device_id: str) -> int:
    """The device's bucket for ``rule``, uniform in ``[0, 10000)``.

    >>> bucket("fan_out", "dev-1") == bucket("fan_out", "dev-1")
    True
    """
    digest = hashlib.blake2b(f"{rule}\0{device_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def enforced(rule: str, device_id: str, percent: int) -> bool:
    """Whether ``rule`` is enforced for this device at ``percent`` % rollout.

    >>> enforced("fan_out", "any", 100), enforced("fan_out", "any", 0)
    (True, False)
    """
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return bucket(rule, device_id) < percent * BUCKETS // 100
