"""The service's settings: one frozen, validated object built from the environment.

Nothing here runs at import time; :func:`Settings.from_env` is called by the
app factory (or by a test with its own mapping), and a bad value fails fast
with a message that names the environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_FILE = PROJECT_ROOT / "config" / "policy.yaml"

Role = Literal["issuer", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("issuer", "analyst", "admin")
FailMode = Literal["allow", "challenge", "block"]

# Minimum length of an API key: short keys are guessable, and a default like
# "changeme" must never pass.
MIN_KEY_LENGTH = 16


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class ApiKey(BaseModel):
    """One bearer key and the role it carries."""

    model_config = ConfigDict(frozen=True)

    role: Role
    key: str = Field(repr=False)


class Settings(BaseModel):
    """Validated service settings.

    Build it with :meth:`from_env`; construct it directly in tests.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: str | None = None
    # REDIS_URL names a node of a Redis Cluster: the client discovers the
    # others and the decision path runs in two steps across slots
    # (docs/architecture.md). Needs REDIS_URL; the embedded Redis is single.
    redis_cluster: bool = False
    # Decisions through the native decide, the Redis module riskdecide
    # (RISK.DECIDE, docs/architecture.md): auto uses it when the server has
    # it at this release's version, on also refuses to start without it, off
    # never uses it. On Redis Cluster each master's steps use it when that
    # master has it (on: every master must).
    redis_native: Literal["auto", "on", "off"] = "auto"
    api_keys: tuple[ApiKey, ...]
    # Run the real-time signal consumer (python -m riskservice signals) beside
    # the workers (gunicorn's master starts it; docs/signals.md).
    signals: bool = True
    policy_file: Path = DEFAULT_POLICY_FILE
    redis_budget_ms: int = Field(50, ge=1, le=5000)
    # A worker's call that finds Redis idle waits this long before sending,
    # so that its concurrent calls share the round trip (group_commit.py;
    # measured: a sixth less Redis CPU per decision under load, and a far
    # shorter tail, for 0.2 ms more on a lone call). On a cluster, per master.
    redis_linger_us: int = Field(200, ge=0, le=5000)
    fail_mode: FailMode = "allow"
    data_dir: Path = PROJECT_ROOT / "var"
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # How long a decision is kept: replays of its event id return it, and
    # outcomes and challenge results can still be reported (a share
    # lives about 72 h).
    decision_ttl_s: int = Field(4 * 86_400, ge=60, le=30 * 86_400)
    # How often each worker looks at the policy file for changes (0: never;
    # SIGHUP still reloads).
    policy_poll_s: float = Field(2.0, ge=0, le=3600)
    # How long share events are kept (WeChat's coupon-sharing guide: 30 days of behaviour logs).
    event_retention_days: int = Field(30, ge=1, le=365)
    # After a Redis failure, skip Redis for this long before probing again so a
    # hung server does not cost every request the whole budget.
    breaker_cooldown_ms: int = Field(25, ge=0, le=60_000)
    # Wait, in each script's round trip, until this many replicas have its
    # writes (Redis WAIT, at most a quarter of the budget): a failover then
    # loses no acknowledged share unless the wait timed out. 0: do not wait.
    redis_wait_replicas: int = Field(0, ge=0, le=16)
    # The platform presets a policy's merchants can start from.
    presets_file: Path = PROJECT_ROOT / "config" / "presets.yaml"
    # Serving (config/gunicorn.conf.py): where to listen, how many worker
    # processes, their kind (gevent: a greenlet per connection, so idle and
    # slow clients cannot starve it; gthread: a pool of `threads`), how many
    # connections a gevent worker holds, and the keep-alive / request-head
    # time-out in seconds.
    bind: str = "127.0.0.1:8000"
    workers: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1, le=256)
    worker_class: Literal["gevent", "gthread", "sync"] = "gevent"
    threads: int = Field(4, ge=1, le=256)
    worker_connections: int = Field(2000, ge=1, le=100_000)
    keepalive_s: int = Field(5, ge=1, le=300)

    @field_validator("api_keys")
    @classmethod
    def _keys_present(cls, keys: tuple[ApiKey, ...], info: ValidationInfo) -> tuple[ApiKey, ...]:
        # The command line (no HTTP) may run without keys.
        if not keys and (info.context or {}).get("require_keys", True):
            raise ValueError("at least one role:key pair is required")
        for k in keys:
            if len(k.key) < MIN_KEY_LENGTH:
                raise ValueError(f"the {k.role} key is shorter than {MIN_KEY_LENGTH} characters")
        return keys

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @field_validator("redis_cluster")
    @classmethod
    def _cluster_needs_url(cls, cluster: bool, info: ValidationInfo) -> bool:
        if cluster and info.data.get("redis_url") is None:
            raise ValueError("needs REDIS_URL naming a node of the cluster (the embedded Redis is a single Redis)")
        return cluster

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, require_keys: bool = True) -> Settings:
        """Read the settings from environment variables.

        Parameters
        ----------
        environ : mapping, optional
            Defaults to ``os.environ``.
        require_keys : bool
            False for the command line, which serves no HTTP.

        Raises
        ------
        SettingsError
            Naming the first bad variable.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for var, field in ENV_VARS.items():
            value = env.get(var)
            if value is None or value.strip() == "":
                continue
            if field == "api_keys":
                try:
                    raw[field] = parse_api_keys(value)
                except ValueError as exc:
                    raise SettingsError(f"{var}: {exc}") from None
            else:
                raw[field] = value.strip()
        if "api_keys" not in raw and not require_keys:
            raw["api_keys"] = ()
        if "api_keys" not in raw:
            raise SettingsError(
                "RISK_API_KEYS: required, comma-separated role:key pairs "
                "(roles issuer, analyst, admin), e.g. issuer:<secret>,analyst:<secret>"
            )
        try:
            return cls.model_validate(raw, context={"require_keys": require_keys})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            var = FIELD_TO_VAR.get(field, field)
            raise SettingsError(f"{var}: {err['msg']}") from None


# Environment variable -> settings field.
ENV_VARS: dict[str, str] = {
    "REDIS_URL": "redis_url",
    "RISK_REDIS_CLUSTER": "redis_cluster",
    "RISK_REDIS_NATIVE": "redis_native",
    "RISK_API_KEYS": "api_keys",
    "RISK_POLICY_FILE": "policy_file",
    "RISK_POLICY_POLL_S": "policy_poll_s",
    "RISK_REDIS_BUDGET_MS": "redis_budget_ms",
    "RISK_REDIS_LINGER_US": "redis_linger_us",
    "RISK_FAIL_MODE": "fail_mode",
    "RISK_DATA_DIR": "data_dir",
    "RISK_MAX_BODY_BYTES": "max_body_bytes",
    "RISK_LOG_LEVEL": "log_level",
    "RISK_DECISION_TTL_S": "decision_ttl_s",
    "RISK_EVENT_RETENTION_DAYS": "event_retention_days",
    "RISK_BREAKER_COOLDOWN_MS": "breaker_cooldown_ms",
    "RISK_REDIS_WAIT_REPLICAS": "redis_wait_replicas",
    "RISK_PRESETS_FILE": "presets_file",
    "RISK_BIND": "bind",
    "WEB_CONCURRENCY": "workers",
    "RISK_WORKER_CLASS": "worker_class",
    "RISK_THREADS": "threads",
    "RISK_WORKER_CONNECTIONS": "worker_connections",
    "RISK_KEEPALIVE_S": "keepalive_s",
    "RISK_SIGNALS": "signals",
}
FIELD_TO_VAR = {field: var for var, field in ENV_VARS.items()}


def parse_api_keys(value: str) -> tuple[ApiKey, ...]:
    """Parse ``role:key,role:key`` into :class:`ApiKey` records.

    >>> [k.role for k in parse_api_keys("issuer:0123456789abcdef,admin:fedcba9876543210")]
    ['issuer', 'admin']
    """
    keys = []
    for i, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        role, sep, key = part.partition(":")
        if not sep or not key:
            raise ValueError(f"entry {i + 1} is not role:key")
        if role not in ROLES:
            raise ValueError(f"entry {i + 1} has unknown role {role!r} (use {', '.join(ROLES)})")
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"entry {i + 1} ({role}) key is shorter than {MIN_KEY_LENGTH} characters")
        keys.append(ApiKey(role=role, key=key))
    return tuple(keys)
