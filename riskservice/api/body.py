"""Request bodies: one JSON object, sent as JSON, with no key given twice.

Duplicate keys: ``{"device_id": "d1", "device_id": "d2"}`` is valid JSON to
most parsers, which keep the last value (orjson, Python's ``json``) or the
first (some proxies and gateways). A proxy that checked ``d1`` would let us
decide about ``d2``, so every JSON body with a key twice in one object, at
any depth, is refused with a 400 naming the key.

orjson cannot report duplicates, and a parse that can (``json`` with an
``object_pairs_hook``) is several times slower, so the slow parse runs only
when a duplicate is possible. Every key in the text is followed by a colon,
so the body has at least as many colons as key occurrences; if the parsed
objects hold as many keys as the body has colons, no key was dropped, so
none was repeated. Colons inside strings (times, IPv6 addresses, text) make
that check inconclusive; then the keys of the text are counted exactly with
one regular expression, and only a body that really repeats a key is parsed
again, to name the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.http import parse_options_header

from riskservice.decisions.request import parse_json_object, validation_error
from riskservice.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names JSON in UTF-8 (the only
    encoding JSON has, RFC 8259: a ``charset`` parameter, if any, must say
    so; a body labelled ``latin-1`` would otherwise be read as UTF-8 anyway)."""
    # The exact header most clients send spares parsing it.
    if content_type == "application/json":
        return True
    if content_type is None:
        return False
    kind, options = parse_options_header(content_type)
    # (us-ascii is a subset of UTF-8: a body that is ASCII reads the same)
    return kind.lower() == "application/json" and options.get("charset", "utf-8").lower() in (
        "utf-8", "utf8", "us-ascii", "ascii")


def not_json() -> UnsupportedMediaType:
    return UnsupportedMediaType("send the body as UTF-8 JSON with 'Content-Type: application/json'",
                                {"Content-Type": "must be application/json (charset utf-8, if given)"})


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes", {"body": "too large"})


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """The body of a WSGI request, at most ``limit`` bytes (413 beyond).

    A body with a ``Content-Length`` is read to that length; one without
    (chunked, which gunicorn decodes and marks ``wsgi.input_terminated``) is
    read to its end. Without either, the request has no body.
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise InvalidJson("Content-Length is not a number", {"Content-Length": "invalid"}) from None
        if length > limit:
            raise too_large(limit)
        raw: bytes = stream.read(length) if length > 0 else b""
        if len(raw) < length:
            raise InvalidJson("the request body ended before its Content-Length", {"body": "incomplete"})
        return raw
    if not environ.get("wsgi.input_terminated"):
        return b""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise too_large(limit)
    return raw


def parse_body(raw: bytes) -> dict[str, object]:
    """A body's one JSON object (400 for bad JSON or a key given twice)."""
    data = parse_json_object(raw)
    refuse_duplicate_keys(raw, data)
    return data


def json_body() -> bytes:
    """The raw body of a JSON request (415 for another content type)."""
    if not is_json(request.environ.get("CONTENT_TYPE")):
        raise not_json()
    return request.get_data(cache=False)


def json_object() -> dict[str, object]:
    """The request's body as one JSON object (400 for bad JSON or a key given twice)."""
    return parse_body(json_body())


def count_keys(value: Any) -> int:
    """Keys in every object of a parsed JSON value (iterative: bodies may nest 1000 deep)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            total += len(item)
            stack.extend([v for v in item.values() if type(v) is dict or type(v) is list])
        elif type(item) is list:
            stack.extend([v for v in item if type(v) is dict or type(v) is list])
    return total


# Every string of a valid JSON text, with the colon that follows it when it is
# a key. Matching whole strings from the first quote keeps the scan aligned:
# outside strings, a quote only ever opens one.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"\s*(:?)')


def key_occurrences(raw: bytes) -> int:
    """How many keys the text of a valid JSON value holds, repeated ones included."""
    return _STRING.findall(raw).count(b":")


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def refuse_duplicate_keys(raw: bytes, parsed: Any) -> None:
    """Raise :class:`InvalidJson` naming the first key that one object of ``raw`` holds twice.

    Parameters
    ----------
    raw : bytes
        The body as received (already parsed successfully as ``parsed``).
    parsed : Any
        What orjson made of it.

    Examples
    --------
    >>> refuse_duplicate_keys(b'{"a": 1, "b": {"c": 2}}', {"a": 1, "b": {"c": 2}})
    >>> refuse_duplicate_keys(b'{"a": 1, "a": 2}', {"a": 2})
    Traceback (most recent call last):
    ...
    riskservice.errors.InvalidJson: request body has the key 'a' twice in one object
    """
    kept = count_keys(parsed)
    if raw.count(b":") == kept:
        return  # no key was dropped: the common case, at the cost of one byte scan
    if key_occurrences(raw) == kept:
        return  # the extra colons were inside strings
    try:
        json.loads(raw, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        raise InvalidJson(f"request body has the key {dup.key!r} twice in one object",
                          {dup.key: "duplicate key"}) from None
    except RecursionError:
        raise InvalidJson("request body is nested too deeply", {"body": "nested too deeply"}) from None


def validated(model: type[M], data: dict[str, object]) -> M:
    """``data`` as ``model``; a 422 naming every bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
