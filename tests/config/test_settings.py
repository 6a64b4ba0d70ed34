from __future__ import annotations

import pytest

from config.settings import Settings, SettingsError

KEYS = "issuer:0123456789abcdef,analyst:fedcba9876543210"


def test_defaults_from_a_minimal_environment() -> None:
    s = Settings.from_env({"RISK_API_KEYS": KEYS})
    assert s.redis_url is None
    assert s.redis_budget_ms == 50 and s.fail_mode == "allow"
    assert [k.role for k in s.api_keys] == ["issuer", "analyst"]
    assert s.policy_file.name == "policy.yaml"


def test_values_are_read() -> None:
    s = Settings.from_env({"RISK_API_KEYS": KEYS, "REDIS_URL": "redis://r:6379/1", "RISK_FAIL_MODE": "block",
                           "RISK_REDIS_BUDGET_MS": "20"})
    assert (s.redis_url, s.fail_mode, s.redis_budget_ms) == ("redis://r:6379/1", "block", 20)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "RISK_API_KEYS"),
        ({"RISK_API_KEYS": "issuer"}, "RISK_API_KEYS"),
        ({"RISK_API_KEYS": "root:0123456789abcdef"}, "RISK_API_KEYS"),
        ({"RISK_API_KEYS": "issuer:short"}, "RISK_API_KEYS"),
        ({"RISK_API_KEYS": KEYS, "RISK_FAIL_MODE": "maybe"}, "RISK_FAIL_MODE"),
        ({"RISK_API_KEYS": KEYS, "RISK_REDIS_BUDGET_MS": "fast"}, "RISK_REDIS_BUDGET_MS"),
        ({"RISK_API_KEYS": KEYS, "RISK_REDIS_BUDGET_MS": "0"}, "RISK_REDIS_BUDGET_MS"),
        ({"RISK_API_KEYS": KEYS, "REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"RISK_API_KEYS": KEYS, "RISK_LOG_LEVEL": "chatty"}, "RISK_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        Settings.from_env(env)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({"RISK_API_KEYS": KEYS})
    with pytest.raises(Exception, match="frozen"):
        s.fail_mode = "block"  # type: ignore[misc]


def test_keys_do_not_leak_into_repr() -> None:
    assert "0123456789abcdef" not in repr(Settings.from_env({"RISK_API_KEYS": KEYS}))


def test_serving_settings_come_from_the_environment_and_are_checked() -> None:
    env = {"RISK_API_KEYS": "issuer:0123456789abcdef", "RISK_WORKER_CLASS": "gthread", "RISK_THREADS": "8",
           "WEB_CONCURRENCY": "3", "RISK_BIND": "0.0.0.0:9000", "RISK_KEEPALIVE_S": "2"}
    s = Settings.from_env(env)
    assert (s.worker_class, s.threads, s.workers, s.bind, s.keepalive_s) == ("gthread", 8, 3, "0.0.0.0:9000", 2)
    with pytest.raises(SettingsError, match="RISK_WORKER_CLASS"):
        Settings.from_env({**env, "RISK_WORKER_CLASS": "eventlet"})


def test_the_command_line_needs_no_api_keys() -> None:
    s = Settings.from_env({"REDIS_URL": "redis://localhost:6379/0"}, require_keys=False)
    assert s.api_keys == () and s.redis_url == "redis://localhost:6379/0"
    with pytest.raises(SettingsError, match="RISK_API_KEYS"):
        Settings.from_env({"REDIS_URL": "redis://localhost:6379/0"})
