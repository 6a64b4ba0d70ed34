"""Administration (role admin): the active policy."""

from __future__ import annotations

from flask import Blueprint, Response

from riskservice.api.responses import json_response
from riskservice.auth import require
from riskservice.state import risk_state

bp = Blueprint("admin", __name__)


@bp.get("/v1/policy")
@require("admin")
def active_policy() -> Response:
    """The policy in force: version, file, load error if any, and every merchant's effective rules."""
    holder = risk_state().policies
    policy = holder.current
    body = {
        **holder.status(),
        "rules": policy.default.rules.model_dump(mode="json"),
        "merchants": {m: c.rules.model_dump(mode="json") for m, c in sorted(policy.merchants.items())},
        # merchant -> rule -> field -> default | preset:<name> | merchant
        "origins": policy.origins,
    }
    return json_response(body)
