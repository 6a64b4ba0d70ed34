"""Load, validate and compile a policy file.

Errors name the place in the file (``merchants.m42.device_velocity.limit:
must be ...``). Compiling does once, at load, everything a decision would
otherwise redo: merging merchant overrides, the matcher for sensitive copy,
and the packed plan handed to the Redis scripts (:mod:`riskservice.limits.contract`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from riskservice.decisions.text import TermMatcher
from riskservice.errors import PolicyError
from riskservice.limits.contract import RULES, SIGNAL_FIELDS, Plan, RulePlan
from riskservice.policy.model import PolicyFile, Review, Rewards, Rules

PRESETS_FILE = Path(__file__).resolve().parents[2] / "config" / "presets.yaml"

# Count-window rules and ban rules among the scripts' stateful rules.
WINDOW_RULES = ("device_velocity", "device_daily_cap", "user_daily_cap", "device_many_users")
BAN_RULES = ("device_blocklist", "user_blocklist", "ip_blocklist")
SIGNAL_RULES = tuple(SIGNAL_FIELDS)
# Entries the success-rate log may keep: outcomes arrive only for admitted
# shares, at most the daily cap plus passed challenges in a window.
OUTCOME_LOG_FACTOR = 2


@dataclass(frozen=True)
class CompiledRules:
    """One merchant's effective rules, ready for the decision path."""

    rules: Rules
    matcher: TermMatcher
    plan: bytes  # contract.Plan, packed for the Redis scripts
    # Every stateful rule by id (contract.RULES) with its rollout percentage
    # and shadow setting; empty when none is rolled out.
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


def load_policy(path: Path | str, presets_file: Path = PRESETS_FILE) -> Policy:
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
    return parse_policy(text, source=str(path), presets_file=presets_file)


class _UniqueKeys(yaml.SafeLoader):
    """Safe YAML that refuses a key written twice in one mapping: plain YAML
    keeps the last silently, so a merchant's first ``device_velocity`` would
    be dropped without a word (the API refuses duplicate JSON keys for the
    same reason)."""


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # (`<<: *defaults` overrides by design)
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"found the key {key!r} twice (first on line {seen[key].line + 1})", key_node.start_mark)
        if isinstance(key, Hashable):
            seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=True)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_policy(text: bytes | str, source: str = "<policy>", presets_file: Path = PRESETS_FILE) -> Policy:
    """Validate and compile policy YAML ``text`` (merchants may start from the
    presets of ``presets_file`` or of the policy's own ``presets:``)."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeys)  # (safe: a SafeLoader refusing duplicate keys)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: must be a mapping with a 'rules' section")
    try:
        parsed = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_describe(exc)}") from None
    default_raw = raw["rules"]
    presets = {**shipped_presets(presets_file), **parsed.presets}
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


def shipped_presets(presets_file: Path = PRESETS_FILE) -> dict[str, dict[str, dict[str, Any]]]:
    """The platform presets in ``presets_file`` (``config/presets.yaml``)."""
    try:
        loaded = yaml.load(Path(presets_file).read_text(), Loader=_UniqueKeys)  # (safe, see _UniqueKeys)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{presets_file}: {exc}") from None
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
    def stateful(name: str, limit: float, window_ms: int = 0, extra: float = 0.0) -> RulePlan:
        rule = getattr(rules, name)
        return RulePlan(enabled=rule.enabled, limit=limit, window_ms=window_ms, severity=rule.severity,
                        shadow=rule.shadow, challenge=rule.challenge or "", extra=extra)

    windows = {name: stateful(name, getattr(rules, name).limit, getattr(rules, name).window_s * 1000)
               for name in WINDOW_RULES}
    rate, travel, failures = rules.low_success_rate, rules.impossible_travel, rules.challenge_failures
    plan = Plan(
        rules={
            **windows,
            "low_success_rate": stateful("low_success_rate", rate.min_samples, rate.window_s * 1000, rate.threshold),
            "impossible_travel": stateful("impossible_travel", travel.max_speed_kmh, 0, travel.min_distance_km),
            "graph_anomaly": stateful("graph_anomaly", rules.graph_anomaly.threshold),
            **{name: stateful(name, 0) for name in BAN_RULES},
            # Real-time signals (issue 10): limit the threshold, window for the reason.
            **{name: stateful(name, getattr(rules, name).threshold, getattr(rules, name).window_s * 1000)
               for name in SIGNAL_RULES},
        },
        device_log_cap=bounds.device_log_cap, device_log_keep_ms=bounds.device_log_keep_ms,
        user_log_cap=bounds.user_log_cap, user_log_keep_ms=bounds.user_log_keep_ms,
        users_cap=bounds.users_cap, users_keep_ms=bounds.users_keep_ms, review_points=review.min_points,
        # The cool-down a ban with code challenge_failures is reported under.
        cooldown=RulePlan(True, severity=failures.severity, shadow=failures.shadow,
                          challenge=failures.challenge or ""),
        failures_limit=failures.limit if failures.enabled else 0, failures_window_ms=failures.window_s * 1000,
        cooldown_ms=failures.cooldown_s * 1000,
    )
    # Rollout flags go to the script by rule id, for every stateful rule.
    rollouts = tuple((name, getattr(rules, name).rollout, getattr(rules, name).shadow) for name in RULES)
    if all(percent == 100 for _, percent, _ in rollouts):
        rollouts = ()
    rolled_out = tuple((name, getattr(rules, name).rollout) for name in type(rules).model_fields
                       if getattr(rules, name).rollout < 100)
    return CompiledRules(rules=rules, matcher=TermMatcher(rules.sensitive_copy.terms), plan=plan.pack(),
                         rollouts=rollouts, rolled_out=rolled_out)
