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
from riskservice.policy.model import PolicyFile, Review, Rewards, Rules

PRESETS_FILE = Path(__file__).resolve().parents[2] / "config" / "presets.yaml"

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
    # The plan's stateful rules in order (windows, then bans) with their
    # rollout percentage and shadow setting; empty when none is rolled out.
    rollouts: tuple[tuple[str, int, bool], ...] = ()
    # Every rule under a partial rollout, with its percentage (for metrics by arm).
    rolled_out: tuple[tuple[str, int], ...] = ()


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
    rewards: Rewards = field(default_factory=Rewards)
    # merchant -> rule -> field -> where its value came from
    origins: Mapping[str, dict[str, dict[str, str]]] = field(default_factory=dict)

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
    presets = {**shipped_presets(), **parsed.presets}
    merchants: dict[str, Rules] = {}
    origins: dict[str, dict[str, dict[str, str]]] = {}
    for merchant_id, section in parsed.merchants.items():
        overrides = dict(section)
        preset = overrides.pop("preset", None)
        layers: list[tuple[str, Mapping[str, Any]]] = []
        if preset is not None:
            if not isinstance(preset, str) or preset not in presets:
                known = ", ".join(sorted(presets))
                raise PolicyError(f"{source}: merchants.{merchant_id}.preset: unknown preset {preset!r} "
                                  f"(known: {known})")
            layers.append((f"preset:{preset}", presets[preset]))
        layers.append(("merchant", overrides))
        merged, origin = _layer(default_raw, layers)
        try:
            merchants[merchant_id] = Rules.model_validate(merged)
        except ValidationError as exc:
            raise PolicyError(f"{source}: {_describe(exc, prefix=('merchants', merchant_id))}") from None
        origins[merchant_id] = origin
    # The presets in force are part of what the version names.
    raw = {**raw, "presets": presets}
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
        rewards=parsed.rewards,
        origins=origins,
    )


def shipped_presets() -> dict[str, dict[str, dict[str, Any]]]:
    """The platform presets in ``config/presets.yaml``."""
    try:
        loaded = yaml.safe_load(PRESETS_FILE.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{PRESETS_FILE}: {exc}") from None
    return dict(loaded or {})


def _layer(base: Mapping[str, Any], layers: list[tuple[str, Mapping[str, Any]]],
           ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Merge override layers onto the defaults, field by field, and note where
    each effective value came from (``default``, ``preset:<name>``, ``merchant``)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    origin = {k: dict.fromkeys(v, "default") for k, v in merged.items() if isinstance(v, dict)}
    for name, overrides in layers:
        for rule, values in overrides.items():
            if rule in merged and isinstance(merged[rule], dict) and isinstance(values, dict):
                merged[rule].update(values)
                origin[rule].update(dict.fromkeys(values, name))
            else:
                merged[rule] = values  # validation names what is wrong with it
    return merged, origin


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
    ordered = [(entry[0], getattr(rules, entry[0])) for entry in windows + bans]
    rollouts = tuple((name, rule.rollout, rule.shadow) for name, rule in ordered)
    if all(percent == 100 for _, percent, _ in rollouts):
        rollouts = ()
    rolled_out = tuple((name, getattr(rules, name).rollout) for name in type(rules).model_fields
                       if getattr(rules, name).rollout < 100)
    return CompiledRules(rules=rules, matcher=TermMatcher(rules.sensitive_copy.terms), plan=orjson.dumps(plan),
                         rollouts=rollouts, rolled_out=rolled_out)
