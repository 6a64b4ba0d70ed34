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
        "lon": "", "merchant_id": "", "recipients": 1, "retention_ms": 86_400_000, "arms": "",
    }
    values.update(fields)
    return DecideArgs(**values)


# The policy of the random-traffic tests: small windows and limits, so that a
# few thousand decisions reach every stateful rule many times.
RANDOM_TRAFFIC_POLICY = b"""
rules:
  device_blocklist: {action: block}
  user_blocklist: {action: block}
  ip_blocklist: {action: block}
  device_velocity: {limit: 4, window_s: 20, action: challenge, challenge: captcha}
  device_daily_cap: {limit: 8, window_s: 120, action: block}
  user_daily_cap: {limit: 6, window_s: 120, action: block}
  device_many_users: {limit: 2, window_s: 60, action: challenge, challenge: captcha}
  fan_out: {limit: 10, action: challenge, challenge: sms}
  sensitive_copy: {action: block, terms: [x]}
  low_success_rate: {min_samples: 3, threshold: 0.5, window_s: 90, action: challenge, challenge: captcha}
  geofence: {areas: [], action: challenge, challenge: captcha}
  impossible_travel: {max_speed_kmh: 500, min_distance_km: 1, action: challenge, challenge: sms}
  challenge_failures: {limit: 5, window_s: 3600, cooldown_s: 3600, action: block}
  graph_anomaly: {threshold: 0.8, action: challenge, challenge: captcha}
  external_channel: {allowed_platforms: ["*"], action: block}
"""
