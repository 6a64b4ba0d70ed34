"""Load, validate and compile a policy file.

Errors name the place in the file (``merchants.m42.device_velocity.limit:
must be ...``). Compiling does once, at load, everything a decision would
otherwise redo: merging merchant overrides, the matcher for sensitive copy,
and the JSON plan handed to the Redis script.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from riskservice.decisions.text import TermMatcher
from riskservice.errors import PolicyError
from riskservice.policy.model import PolicyFile, Review, Rules

# Where a stateful rule's evidence is kept (see limits/lua/decide.lua).
SOURCE_DEVICE_LOG, SOURCE_USER_LOG, SOURCE_DEVICE_USERS, SOURCE_OUTCOMES, SOURCE_TRAVEL, SOURCE_GRAPH = 1, 2, 3, 4, 5, 6
# Ban rule -> index of its key among the script's KEYS.
BAN_KEY_INDEX = {"device_blocklist": 3, "user_blocklist": 5, "ip_blocklist": 6}
# Entries the success-rate log may keep: outcomes arrive only for admitted
# shares, at most the daily cap plus passed challenges in a window.
OUTCOME_LOG_FACTOR = 2
WINDOW_SOURCES = {
    "device_velocity": SOURCE_DEVICE_LOG,
    "device_daily_cap": SOURCE_DEVICE_LOG,
    "user_daily_cap": SOURCE_USER_LOG,
    "device_many_users": SOURCE_DEVICE_USERS,
}


@dataclass(frozen=True)
class CompiledRules:
    """One merchant's effective rules, ready for the decision path."""

    rules: Rules
    matcher: TermMatcher
    plan: bytes  # JSON for the Redis scripts


@dataclass(frozen=True)
class StoreBounds:
    """What each store keeps, the maximum over every merchant's rules."""

    device_log_cap: int
    device_log_keep_ms: int
    user_log_cap: int
    user_log_keep_ms: int
    users_cap: int
    users_keep_ms: int

    @property
    def outcome_log_cap(self) -> int:
        return OUTCOME_LOG_FACTOR * self.device_log_cap


@dataclass(frozen=True)
class Policy:
    """A validated, compiled policy."""

    name: str
    version: str
    default: CompiledRules
    merchants: Mapping[str, CompiledRules] = field(default_factory=dict)
    bounds: StoreBounds | None = None
    review: Review = field(default_factory=Review)

    def for_merchant(self, merchant_id: str | None) -> CompiledRules:
        """The effective rules for ``merchant_id`` (the defaults when it has none)."""
        if merchant_id is None:
            return self.default
        return self.merchants.get(merchant_id, self.default)


def load_policy(path: Path | str) -> Policy:
    """Read and compile the policy file at ``path``.

    Raises
    ------
    PolicyError
        With the file and the place in it when anything is wrong.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None
    return parse_policy(text, source=str(path))


def parse_policy(text: bytes | str, source: str = "<policy>") -> Policy:
    """Validate and compile policy YAML ``text``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: must be a mapping with a 'rules' section")
    try:
        parsed = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_describe(exc)}") from None
    default_raw = raw["rules"]
    merchants: dict[str, Rules] = {}
    for merchant_id, overrides in parsed.merchants.items():
        merged = _merge(default_raw, overrides)
        try:
            merchants[merchant_id] = Rules.model_validate(merged)
        except ValidationError as exc:
            raise PolicyError(f"{source}: {_describe(exc, prefix=('merchants', merchant_id))}") from None
    version = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:12]
    version = f"{parsed.name}@{version}"
    bounds = _bounds([parsed.rules, *merchants.values()])
    return Policy(
        name=parsed.name,
        version=version,
        default=_compile(parsed.rules, version, bounds, parsed.review),
        merchants={m: _compile(r, version, bounds, parsed.review) for m, r in merchants.items()},
        bounds=bounds,
        review=parsed.review,
    )


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for rule, values in overrides.items():
        if rule in merged and isinstance(merged[rule], dict) and isinstance(values, dict):
            merged[rule].update(values)
        else:
            merged[rule] = values
    return merged


def _describe(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in (*prefix, *err["loc"]))
    msg = str(err["msg"]).removeprefix("Value error, ")
    # A model validator names the sub-field it is about at the start of its message.
    head = re.match(r"^([\w.]+): ", msg)
    if head:
        loc, msg = ".".join(p for p in (loc, head.group(1)) if p), msg[head.end():]
    return f"{loc}: {msg}" if loc else msg


def _bounds(all_rules: list[Rules]) -> StoreBounds:
    def longest(rules: list[Any]) -> int:
        return int(max(r.window_s for r in rules)) * 1000

    dev = [r.device_velocity for r in all_rules] + [r.device_daily_cap for r in all_rules]
    usr = [r.user_daily_cap for r in all_rules]
    many = [r.device_many_users for r in all_rules]
    return StoreBounds(
        device_log_cap=max(r.limit for r in dev),
        device_log_keep_ms=longest(dev),
        user_log_cap=max(r.limit for r in usr),
        user_log_keep_ms=longest(usr),
        # A device keeps its users up to the largest limit; a new user beyond
        # it is refused, so the set cannot grow with traffic.
        users_cap=max(r.limit for r in many),
        users_keep_ms=longest(many),
    )


def _compile(rules: Rules, version: str, bounds: StoreBounds, review: Review) -> CompiledRules:
    windows = []
    for name, source in WINDOW_SOURCES.items():
        rule = getattr(rules, name)
        if rule.enabled:
            windows.append(
                [name, source, rule.limit, rule.window_s * 1000, rule.severity,
                 int(rule.shadow), rule.challenge or "", 0]
            )
    rate = rules.low_success_rate
    if rate.enabled:
        windows.append(["low_success_rate", SOURCE_OUTCOMES, rate.min_samples, rate.window_s * 1000,
                        rate.severity, int(rate.shadow), rate.challenge or "", rate.threshold])
    travel = rules.impossible_travel
    if travel.enabled:
        windows.append(["impossible_travel", SOURCE_TRAVEL, travel.max_speed_kmh, 0, travel.severity,
                        int(travel.shadow), travel.challenge or "", travel.min_distance_km])
    bans = []
    for name, key_index in BAN_KEY_INDEX.items():
        rule = getattr(rules, name)
        if rule.enabled:
            bans.append([name, key_index, rule.severity, int(rule.shadow), rule.challenge or ""])
    graph = rules.graph_anomaly
    if graph.enabled:
        windows.append(["graph_anomaly", SOURCE_GRAPH, graph.threshold, 0, graph.severity, int(graph.shadow),
                        graph.challenge or "", 0])
    failures = rules.challenge_failures
    plan = {
        "w": windows,
        "b": bans,
        # The cool-down a ban with code challenge_failures is reported under.
        "cd": [failures.severity, int(failures.shadow), failures.challenge or ""],
        "cf": [failures.limit if failures.enabled else 0, failures.window_s * 1000, failures.cooldown_s * 1000],
        "dcap": bounds.device_log_cap,
        "dkeep": bounds.device_log_keep_ms,
        "ucap": bounds.user_log_cap,
        "ukeep": bounds.user_log_keep_ms,
        "scap": bounds.users_cap,
        "skeep": bounds.users_keep_ms,
        "rv": review.min_points,
        "pv": version,
    }
    return CompiledRules(rules=rules, matcher=TermMatcher(rules.sensitive_copy.terms), plan=orjson.dumps(plan))
