"""The rules that need no stored state, and how every finding reads to people.

A *finding* is one rule that fired, as the Redis script stores it:
``[code, severity, shadow, challenge, observed, limit, window_s, retry_ms]``.
Stateless rules (fan-out, sensitive copy) are judged here, before the
script, and handed to it so that it can decide whether the share consumes
quota in the same atomic step.
"""

from __future__ import annotations

import math
from typing import Any

from riskservice.decisions.request import DecisionRequest
from riskservice.decisions.text import TermMatcher
from riskservice.policy.model import Rule, Rules

Finding = list[Any]

MESSAGES = {
    "device_blocklist": "device is blocklisted",
    "user_blocklist": "user is blocklisted",
    "ip_blocklist": "ip address is blocklisted",
    "device_velocity": "device would make {observed} shares in {window}, above the limit of {limit}",
    "device_daily_cap": "device would make {observed} shares in {window}, above the limit of {limit}",
    "user_daily_cap": "user would make {observed} shares in {window}, above the limit of {limit}",
    "device_many_users": "{observed} distinct users on this device in {window}, above the limit of {limit}",
    "fan_out": "share to {observed} recipients, above the limit of {limit}",
    "sensitive_copy": "share text contains the sensitive term {observed}",
    "redis_unavailable": "risk state unavailable; answered by the configured fail mode",
}


def finding(rule: Rule, code: str, observed: object, limit: int | None = None) -> Finding:
    return [code, rule.severity, int(rule.shadow), rule.challenge or "", observed, limit, None, 0]


def stateless_findings(req: DecisionRequest, rules: Rules, matcher: TermMatcher) -> list[Finding]:
    """Judge the rules that look only at the request."""
    found: list[Finding] = []
    fan = rules.fan_out
    if fan.enabled and req.fan_out > fan.limit:
        found.append(finding(fan, "fan_out", req.fan_out, fan.limit))
    copy = rules.sensitive_copy
    if copy.enabled and req.text:
        term = matcher.find(req.text)
        if term is not None:
            found.append(finding(copy, "sensitive_copy", term))
    return found


def _window(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def reason(f: Finding) -> dict[str, Any]:
    """Render a finding as the API's reason object."""
    code, severity, _shadow, challenge, observed, limit, window_s, retry_ms = f
    if code.endswith("_blocklist"):
        message = MESSAGES[code] + (f": {observed}" if observed else "")
    else:
        message = (MESSAGES.get(code) or str(code)).format(
            observed=observed, limit=limit, window=_window(window_s) if window_s else ""
        )
    return {
        "code": code,
        "action": "block" if severity == 2 else "challenge",
        "challenge": challenge or None,
        "message": message,
        "observed": observed,
        "limit": limit,
        "window_s": int(window_s) if window_s else None,
        "retry_after_s": math.ceil(retry_ms / 1000) if retry_ms else None,
    }
