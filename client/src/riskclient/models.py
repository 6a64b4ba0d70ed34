"""Typed, frozen answers of the share-risk service, parsed from its JSON.

Parsing is strict about the fields the client relies on (a missing or
mistyped one raises :class:`ValueError`, which the client treats as a bad
response) and ignores fields it does not know, so a newer service that adds
fields does not break an older client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

Verdict = Literal["allow", "challenge", "block"]
ChallengeKind = Literal["captcha", "sms"]
VERDICTS = ("allow", "challenge", "block")
CHALLENGES = ("captcha", "sms")


def _get(data: Mapping[str, Any], key: str, types: type | tuple[type, ...], optional: bool = False) -> Any:
    """``data[key]``, checked against ``types`` (bool is never taken for a number)."""
    if key not in data:
        raise ValueError(f"answer lacks {key!r}")
    value = data[key]
    if value is None and optional:
        return None
    wants_bool = types is bool or (isinstance(types, tuple) and bool in types)
    if not isinstance(value, types) or (isinstance(value, bool) and not wants_bool):
        raise ValueError(f"answer field {key!r} has an unexpected type: {value!r}")
    return value


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], optional: bool = False) -> Any:
    value = _get(data, key, str, optional)
    if value is not None and value not in allowed:
        raise ValueError(f"answer field {key!r} is not one of {allowed}: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that fired (or, from the client itself, why it answered alone).

    ``action`` is ``challenge`` or ``block`` in the service's answers; a
    reason the client adds in fail mode ``allow`` has ``action="allow"``.
    """

    code: str
    action: Verdict
    challenge: ChallengeKind | None
    message: str
    observed: int | float | str | None
    limit: int | float | None
    window_s: int | None
    retry_after_s: int | None

    @classmethod
    def from_json(cls, data: Any) -> Reason:
        if not isinstance(data, dict):
            raise ValueError(f"a reason is not an object: {data!r}")
        return cls(
            code=_get(data, "code", str), action=_choice(data, "action", VERDICTS),
            challenge=_choice(data, "challenge", CHALLENGES, optional=True), message=_get(data, "message", str),
            observed=_get(data, "observed", (int, float, str), optional=True),
            limit=_get(data, "limit", (int, float), optional=True),
            window_s=_get(data, "window_s", int, optional=True),
            retry_after_s=_get(data, "retry_after_s", int, optional=True),
        )


def _reasons(data: Mapping[str, Any], key: str) -> tuple[Reason, ...]:
    return tuple(Reason.from_json(r) for r in _get(data, key, list))


@dataclass(frozen=True, slots=True)
class Scores:
    """The decision's risk score and the device's latest graph scores (``None``: not scored)."""

    risk: float
    anomaly: float | None
    kol: float | None

    @classmethod
    def from_json(cls, data: Any) -> Scores:
        if not isinstance(data, dict):
            raise ValueError(f"scores are not an object: {data!r}")
        num = (int, float)
        return cls(risk=float(_get(data, "risk", num)), anomaly=_get(data, "anomaly", num, optional=True),
                   kol=_get(data, "kol", num, optional=True))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``RateLimit`` / ``RateLimit-Policy`` headers: one window of the device."""

    name: str
    remaining: int
    reset_s: int
    quota: int | None
    window_s: int | None

    @classmethod
    def from_headers(cls, value: str | None, policy: str | None) -> RateLimit | None:
        """Parse ``"device_velocity";r=19;t=300`` (and ``;q=20;w=300``); ``None`` if absent or unreadable."""
        if not value:
            return None
        name, params = _structured_item(value)
        policy_name, policy_params = _structured_item(policy or "")
        if "r" not in params or "t" not in params:
            return None
        same = policy_name == name
        return cls(name=name, remaining=params["r"], reset_s=params["t"],
                   quota=policy_params.get("q") if same else None, window_s=policy_params.get("w") if same else None)


def _structured_item(value: str) -> tuple[str, dict[str, int]]:
    """The first item of an RFC 8941 list of strings with integer parameters."""
    first, *params = value.split(",", maxsplit=1)[0].split(";")
    found: dict[str, int] = {}
    for param in params:
        key, _, number = param.strip().partition("=")
        if number.lstrip("-").isdigit():
            found[key] = int(number)
    return first.strip().strip('"'), found


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one share: ``allow``, ``challenge`` (with its kind) or ``block``.

    ``degraded`` is true when the service answered without its counters
    (Redis down) or when the client answered alone with its fail mode
    (``local`` true, ``decision_id`` ``None``, a ``client_*`` reason).
    ``retry_after`` is the largest ``retry_after_s`` of the reasons or, for
    a refusal without one, the seconds until the rate-limit window frees a
    slot when it has none left. ``replayed`` is true when the service
    answered an earlier request with the same ``event_id`` (the share
    counted once).
    """

    decision: Verdict
    challenge: ChallengeKind | None
    reasons: tuple[Reason, ...]
    degraded: bool
    decision_id: str | None
    retry_after: int | None = None
    shadow: tuple[Reason, ...] = ()
    scores: Scores | None = None
    policy_version: str | None = None
    replayed: bool = False
    rate_limit: RateLimit | None = None
    local: bool = False

    @classmethod
    def from_answer(cls, data: Any, headers: Mapping[str, str]) -> Decision:
        """The service's ``200`` answer (body and headers) as a :class:`Decision`."""
        if not isinstance(data, dict):
            raise ValueError("the decision is not a JSON object")
        verdict = cast(Verdict, _choice(data, "decision", VERDICTS))
        reasons = _reasons(data, "reasons")
        rate_limit = RateLimit.from_headers(headers.get("RateLimit"), headers.get("RateLimit-Policy"))
        waits = [r.retry_after_s for r in reasons if r.retry_after_s is not None]
        retry_after = max(waits) if waits else None
        if retry_after is None and verdict != "allow" and rate_limit is not None and rate_limit.remaining == 0:
            retry_after = rate_limit.reset_s
        return cls(
            decision=verdict, challenge=_choice(data, "challenge", CHALLENGES, optional=True), reasons=reasons,
            degraded=_get(data, "degraded", bool), decision_id=_get(data, "decision_id", str),
            retry_after=retry_after, shadow=_reasons(data, "shadow"), scores=Scores.from_json(data.get("scores")),
            policy_version=_get(data, "policy_version", str),
            replayed=headers.get("Idempotent-Replayed", "").lower() == "true", rate_limit=rate_limit,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to an outcome report (``success``: at least one recipient claimed)."""

    decision_id: str
    delivered: int
    opened: int
    claimed: int
    success: bool
    replayed: bool

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        if not isinstance(data, dict):
            raise ValueError("the outcome is not a JSON object")
        return cls(decision_id=_get(data, "decision_id", str), delivered=_get(data, "delivered", int),
                   opened=_get(data, "opened", int), claimed=_get(data, "claimed", int),
                   success=_get(data, "success", bool), replayed=_get(data, "replayed", bool))


@dataclass(frozen=True, slots=True)
class ChallengeReport:
    """The answer to a challenge result: whether the share now counted, and a cool-down.

    ``blocked_by``: the code of the device's ban that kept a pass from counting
    (``device_blocklist``, ``challenge_failures``), None otherwise: do not go
    ahead with the share.
    """

    decision_id: str
    passed: bool
    counted: bool
    cooldown: bool
    replayed: bool
    blocked_by: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> ChallengeReport:
        if not isinstance(data, dict):
            raise ValueError("the challenge report is not a JSON object")
        return cls(decision_id=_get(data, "decision_id", str), passed=_get(data, "passed", bool),
                   counted=_get(data, "counted", bool), cooldown=_get(data, "cooldown", bool),
                   replayed=_get(data, "replayed", bool),
                   # (absent from a server older than the field)
                   blocked_by=_get(data, "blocked_by", str, optional=True) if "blocked_by" in data else None)


@dataclass(frozen=True, slots=True)
class RewardCheck:
    """The answer to a reward check: pay ``amount_cents + bonus_cents`` only on ``allow``."""

    decision: Verdict
    challenge: ChallengeKind | None
    reward_id: str
    reasons: tuple[Reason, ...]
    amount_cents: int
    bonus_cents: int
    kol_tier: str | None
    reach: int
    anomaly: float | None
    replayed: bool

    @classmethod
    def from_json(cls, data: Any) -> RewardCheck:
        if not isinstance(data, dict):
            raise ValueError("the reward check is not a JSON object")
        return cls(
            decision=_choice(data, "decision", VERDICTS), challenge=_choice(data, "challenge", CHALLENGES, True),
            reward_id=_get(data, "reward_id", str), reasons=_reasons(data, "reasons"),
            amount_cents=_get(data, "amount_cents", int), bonus_cents=_get(data, "bonus_cents", int),
            kol_tier=_get(data, "kol_tier", str, optional=True), reach=_get(data, "reach", int),
            anomaly=_get(data, "anomaly", (int, float), optional=True), replayed=_get(data, "replayed", bool),
        )
