"""Client of the share-risk service: allow, challenge or block before every coupon share.

Only urllib3 and the standard library are imported: none of the service's
dependencies.
"""

from __future__ import annotations

from riskclient.client import DecisionFields, RiskClient
from riskclient.errors import (
    ApiError,
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    RiskClientError,
    TransportError,
)
from riskclient.models import ChallengeReport, Decision, Outcome, RateLimit, Reason, RewardCheck, Scores

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "ChallengeReport",
    "Conflict",
    "Decision",
    "DecisionFields",
    "InvalidRequest",
    "NotFound",
    "Outcome",
    "RateLimit",
    "Reason",
    "RewardCheck",
    "RiskClient",
    "RiskClientError",
    "Scores",
    "TransportError",
    "__version__",
]
