"""Query parameters: every one validated, a bad one answered 400 naming it.

A crafted value (a cursor base64-encoding any JSON, a number in another
script's digits, a time in the year 20000) must be a 400, never reach Redis
as something it cannot read (a 503) or code that assumes a type (a 500). A
parameter given twice is refused like a JSON key given twice: a proxy that
read the first value would see another request than we do. Unknown
parameters are refused, as unknown body fields are, so a typo does not pass
silently.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import request

from riskservice.decisions.request import ID_PATTERN, MAX_ID_LENGTH
from riskservice.errors import InvalidParameter

_ID = re.compile(ID_PATTERN)
# Filters are rule codes, entities ("device:<id>") and key ids.
MAX_FILTER = 8 + MAX_ID_LENGTH
# Epoch milliseconds up to the year 9999; ISO 8601 strings of a sane length.
MAX_EPOCH_MS = 253_402_300_799_999
MAX_ISO = 40


def args(*allowed: str) -> dict[str, str]:
    """The query string as ``name -> value``; 400 for a name not in ``allowed``, given twice or empty."""
    out: dict[str, str] = {}
    for name, values in request.args.lists():
        if name not in allowed:
            raise InvalidParameter(f"unknown query parameter {name[:64]!r}; this endpoint takes "
                                   f"{', '.join(allowed) or 'none'}", {name[:64]: "unknown parameter"})
        if len(values) > 1:
            raise InvalidParameter(f"query parameter {name!r} is given {len(values)} times; give it once",
                                   {name: "repeated"})
        if values[0] == "":
            # An empty value is not "absent": the document gives every parameter a non-empty form.
            raise InvalidParameter(f"query parameter {name!r} is empty; give it a value, or leave it out where "
                                   "it is optional", {name: "empty"})
        out[name] = values[0]
    return out


def valid_id(value: str) -> bool:
    """Whether ``value`` is an id the decision path accepts (1 to 128 printable characters, not blank)."""
    return 0 < len(value) <= MAX_ID_LENGTH and _ID.match(value) is not None


def entity_id(value: str | None, name: str) -> str:
    """A device (or other) id given in the query or the path: required, and one a decision could carry."""
    if value is None or value == "":
        raise InvalidParameter(f"{name} is required", {name: "required"})
    if not valid_id(value):
        raise InvalidParameter(f"{name} must be 1 to {MAX_ID_LENGTH} printable characters, not blank "
                               "(the ids POST /v1/decisions accepts)", {name: "invalid id"})
    return value


def text_filter(params: dict[str, str], name: str) -> str | None:
    """An optional free-text filter (rule code, entity, key id): printable, at most ``MAX_FILTER`` characters."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER or _ID.match(value) is None:
        raise InvalidParameter(f"{name} must be 1 to {MAX_FILTER} printable characters",
                               {name: "invalid filter"})
    return value


def choice(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise InvalidParameter(f"{name} must be one of {', '.join(allowed)}", {name: f"got {value[:64]!r}"})
    return value


def instant(params: dict[str, str], name: str) -> int | None:
    """A time filter: epoch milliseconds (ASCII digits), or ISO 8601 with a zone; None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 15 and int(raw) <= MAX_EPOCH_MS:
        return int(raw)
    parsed: datetime | None = None
    if len(raw) <= MAX_ISO and raw.isascii():
        try:
            # RFC 3339 allows a lower-case t and z.
            parsed = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidParameter(f"{name} must be epoch milliseconds or ISO 8601 with a zone "
                               "(e.g. 2026-11-22T10:00:00+08:00)", {name: f"got {raw[:64]!r}"})
    ms = round(parsed.timestamp() * 1000)
    if not 0 <= ms <= MAX_EPOCH_MS:  # before 1970, or a zone that pushes 9999 into year 10000
        raise InvalidParameter(f"{name} must be between 1970 and 9999", {name: f"got {raw[:64]!r}"})
    return ms


def time_range(params: dict[str, str]) -> tuple[int | None, int | None]:
    """``since`` (inclusive) and ``until`` (exclusive); 400 naming ``until`` when it comes first."""
    since, until = instant(params, "since"), instant(params, "until")
    if since is not None and until is not None and until < since:
        raise InvalidParameter("until must not be before since", {"until": "before since"})
    return since, until


def int_param(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``[low, high]`` (400 naming it otherwise).

    Plain ASCII digits only: Python's ``int`` would also take ``" 7"``,
    ``"1_0"`` and other scripts' digits, which no other client reads alike.
    """
    if raw is None or raw == "":
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else low - 1
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be a whole number from {low} to {high}", {name: f"got {raw[:64]!r}"})
    return value
