"""What the tests of decisions judged with real-time signals share: an app
whose policy has test merchants, and a consumer started at the test clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from config.settings import DEFAULT_POLICY_FILE
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from riskservice.signals.consumer import SignalConsumer
from tests.conftest import make_settings
from tests.redis_server import RedisServer


def app_with_merchants(redis_server: RedisServer, tmp_path: Path, clock: ManualClock, merchants: str) -> Flask:
    """The app on the shipped policy, its ``merchants: {}`` replaced by ``merchants`` (YAML)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY_FILE.read_text().replace("merchants: {}", merchants))
    return create_app(make_settings(redis_server.url, tmp_path, policy_file=policy), clock=clock)


@pytest.fixture
def consumer(redis_client: redis.Redis, clock: ManualClock) -> Iterator[SignalConsumer]:
    """A signal consumer over the test Redis, started at the test clock."""
    consumer = SignalConsumer(redis_client)
    consumer.start(now_ms=clock.now_ms())
    yield consumer
