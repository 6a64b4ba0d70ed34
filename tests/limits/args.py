"""The decision script's arguments for tests that call a store directly."""

from __future__ import annotations

from typing import Any

import orjson

from riskservice.decisions.engine import static_verdict
from riskservice.limits.contract import DecideArgs


def decide_args(*, now: int | str, decision_id: str, user_id: str, device_id: str, plan: bytes,
                static: list[list[Any]] | None = None, **fields: Any) -> DecideArgs:
    """``DecideArgs`` with neutral values for what a test does not care about."""
    block, challenge, codes = static_verdict(static or [])
    values: dict[str, Any] = {
        "now": now, "deadline": "", "fingerprint": "fp", "decision_id": decision_id, "user_id": user_id,
        "device_id": device_id, "plan": plan, "policy_version": "v",
        "static_findings": orjson.dumps(static) if static else b"", "static_block": block,
        "static_challenge": challenge, "static_codes": codes, "ttl_ms": 86_400_000, "request": b"{}", "lat": "",
        "lon": "", "merchant_id": "", "recipients": 1, "retention_ms": 86_400_000, "pointer": b"{}", "arms": "",
    }
    values.update(fields)
    return DecideArgs(**values)
