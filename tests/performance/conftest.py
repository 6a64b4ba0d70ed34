"""The service under a policy with fan_out in shadow mode, for shadow hits next to enforced ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask

from riskservice.app import create_app
from riskservice.limits.clock import ManualClock

# The browser test's fixture: Debian's Chromium, installed by the project's script when missing.
from tests.browser import chromium  # noqa: F401
from tests.conftest import make_settings
from tests.performance.helpers import POLICY
from tests.redis_server import RedisServer


@pytest.fixture
def app(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, clock: ManualClock) -> Flask:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return create_app(make_settings(redis_server.url, tmp_path, policy_file=policy), clock=clock)
