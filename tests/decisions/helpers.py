"""Building requests and engines for the decision tests, without HTTP or Redis."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from riskservice.decisions.engine import Decision, DecisionEngine
from riskservice.decisions.request import DecisionRequest, validate_decision_request
from riskservice.policy.load import Policy, parse_policy

DEFAULT_POLICY = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()

_ids = itertools.count()


def policy_with(merchants: str = "{}", **rule_lines: str) -> Policy:
    """The shipped policy, with rules replaced (``name="{...}"``) and merchant overrides.

    Replacing whole rule lines keeps each test's policy readable next to the
    test, and the rest exactly as shipped.
    """
    text = DEFAULT_POLICY
    for name, value in rule_lines.items():
        lines = text.splitlines()
        (index,) = [i for i, line in enumerate(lines) if line.startswith(f"  {name}: ")]
        lines[index] = f"  {name}: {value}"
        text = "\n".join(lines) + "\n"
    return parse_policy(text.replace("merchants: {}", f"merchants: {merchants}"))


def body(**fields: Any) -> dict[str, Any]:
    """A decision body: the required fields a test does not care about, then ``fields``."""
    out: dict[str, Any] = {"event_id": f"ev-{next(_ids)}", "device_id": "dev-1", "user_id": "user-1",
                           "coupon_id": "cp-1"}
    out.update(fields)
    return out


def request(data: dict[str, Any]) -> DecisionRequest:
    return validate_decision_request(data)


def share(engine: DecisionEngine, **fields: Any) -> Decision:
    """Validate one body, as the API does, and decide it."""
    data = body(**fields)
    return engine.decide(request(data), data)


def codes(decision: Decision, key: str = "reasons") -> list[str]:
    found: list[dict[str, Any]] = getattr(decision, key)
    return [r["code"] for r in found]
