"""create_app builds the app and nothing else."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
import redis

from config.settings import Settings
from riskservice.app import create_app
from riskservice.state import RiskState, risk_state
from tests.conftest import KEYS, make_settings


def test_create_app_starts_no_thread_handler_or_write(settings: Settings, redis_client: redis.Redis,
                                                      tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    handler = signal.getsignal(signal.SIGHUP)
    app = create_app(make_settings(settings.redis_url or "", tmp_path, policy_poll_s=2))
    assert set(threading.enumerate()) == threads
    assert signal.getsignal(signal.SIGHUP) is handler
    assert redis_client.dbsize() == 0  # not even an audit entry
    assert isinstance(risk_state(app), RiskState)


def test_create_app_needs_a_redis_url(tmp_path: Path) -> None:
    settings = Settings.model_validate({"api_keys": KEYS, "data_dir": tmp_path})
    with pytest.raises(ValueError, match="redis_url"):
        create_app(settings)
