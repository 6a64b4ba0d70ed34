"""The service's shared state, and the one typed way to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # only for annotations: the parts import this module to reach the state
    from config.settings import Settings
    from riskservice.auth import KeyRing
    from riskservice.decisions.engine import DecisionEngine
    from riskservice.decisions.lifecycle import ShareLifecycle
    from riskservice.graph_store import VersionCache
    from riskservice.limits.cluster import ClusterStore
    from riskservice.limits.store import RedisStore
    from riskservice.metrics import Metrics
    from riskservice.policy.holder import PolicyHolder
    from riskservice.policy.load import Policy
    from riskservice.review.service import ReviewService
    from riskservice.rewards import RewardChecker

EXTENSION = "risk"


@dataclass
class RiskState:
    """Everything the views share (on ``app.extensions``; reach it with :func:`risk_state`)."""

    settings: Settings
    policies: PolicyHolder
    store: RedisStore | ClusterStore
    engine: DecisionEngine
    lifecycle: ShareLifecycle
    rewards: RewardChecker
    keyring: KeyRing
    metrics: Metrics
    graph_versions: VersionCache
    review: ReviewService

    @property
    def policy(self) -> Policy:
        return self.policies.current


def risk_state(app: Flask | None = None) -> RiskState:
    """The state of ``app`` (default: the app handling the current request)."""
    state = (app or current_app).extensions[EXTENSION]
    assert isinstance(state, RiskState)
    return state
