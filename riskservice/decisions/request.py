"""The decision request: parsed, bounded and validated before any rule runs."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from riskservice.errors import InvalidJson, ValidationFailed
from riskservice.limits.keys import canonical_ip

Channel = Literal["chat", "group", "moments", "official_account", "mini_program", "qr", "external"]

MAX_ID_LENGTH = 128
MAX_RECIPIENTS = 1000
MAX_TEXT_LENGTH = 4000


# Printable, not blank: no control characters, at least one non-space. A
# pattern rather than a Python validator, because pydantic-core checks it in
# Rust and ids are validated on every decision.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def _timestamp(value: str | float) -> float:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be ISO 8601 or epoch seconds") from None
        if parsed.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. Z or +08:00)")
        return parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise ValueError("must be epoch seconds")
    return float(value)


class Geo(BaseModel):
    """A point in WGS 84 degrees."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class DecisionRequest(BaseModel):
    """``POST /v1/decisions``: one share about to happen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: Id = Field(description="Idempotency key: a replay returns the same decision and counts once.")
    device_id: Id
    user_id: Id = Field(description="The sharer.")
    coupon_id: Id
    merchant_id: Id | None = Field(None, description="Selects the merchant's policy overrides.")
    channel: Channel | None = None
    platform: Annotated[str, Field(min_length=1, max_length=32, pattern=ID_PATTERN)] | None = Field(
        None, description="With channel external: the platform shared to (qq, weibo, alipay, douyin, ...).")
    recipients: Annotated[list[Id], Field(max_length=MAX_RECIPIENTS)] | None = None
    recipient_count: int | None = Field(None, ge=0, le=1_000_000)
    ip: Annotated[str, Field(max_length=64), AfterValidator(canonical_ip)] | None = None
    geo: Geo | None = None
    text: str | None = Field(None, max_length=MAX_TEXT_LENGTH, description="The share copy.")
    occurred_at: Annotated[str | float, AfterValidator(_timestamp)] | None = Field(
        None, description="ISO 8601 with zone, or epoch seconds; informational."
    )

    @model_validator(mode="after")
    def _counts_agree(self) -> DecisionRequest:
        if self.recipients is not None and self.recipient_count is not None:
            if self.recipient_count != len(set(self.recipients)):
                raise ValueError("recipient_count: does not match the number of distinct recipients")
        return self

    @property
    def fan_out(self) -> int:
        """How many people this share reaches."""
        if self.recipients is not None:
            return len(set(self.recipients))
        return self.recipient_count or 0


def _huge_int(text: str) -> int | float:
    # (Past 20 digits no field can take it: infinity, which the model refuses by name.)
    return int(text) if len(text) <= 20 else math.inf


def _with_huge_numbers(body: bytes) -> Any:
    """``body`` parsed when orjson refused it only for a number out of a
    double's range (``1e999``, a 5000-digit integer): each such number as
    infinity, so that validation names the field that holds it rather than
    the body. None for anything else orjson refused."""
    def refuse(_: str) -> None:
        raise ValueError("NaN and Infinity are not JSON")

    try:
        return json.loads(body, parse_int=_huge_int, parse_constant=refuse)
    except (ValueError, RecursionError):
        return None


def parse_json_object(body: bytes) -> dict[str, object]:
    """Parse a request body that must be one JSON object."""
    if not body:
        raise InvalidJson("request body is empty; send a JSON object", {"body": "required"})
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        data = _with_huge_numbers(body) if str(exc).startswith("number is infinity") else None
        if data is None:
            raise InvalidJson(f"request body is not valid JSON (UTF-8): {exc}", {"body": "invalid JSON"}) from None
    if not isinstance(data, dict):
        raise InvalidJson("request body must be a JSON object", {"body": "must be an object"})
    return data


def validation_error(exc: ValidationError) -> ValidationFailed:
    """Turn pydantic's errors into our 422 naming each field."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err["loc"])
        # Model-level checks name their field at the start of the message.
        if not loc and ": " in msg:
            loc, msg = msg.split(": ", 1)
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "string_pattern_mismatch":
            pattern = (err.get("ctx") or {}).get("pattern")
            msg = ("must be printable text, not blank, without control characters" if pattern == ID_PATTERN
                   else f"must match {pattern}")
        fields.setdefault(loc or "body", msg)
    summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return ValidationFailed(f"invalid request: {summary}", fields)


def validate_decision_request(data: dict[str, object]) -> DecisionRequest:
    """Validate a parsed ``POST /v1/decisions`` body."""
    try:
        return DecisionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
