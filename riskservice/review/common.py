"""Small helpers shared by the review modules: time, decoding, cursors."""

from __future__ import annotations

import base64
from typing import Any, cast

import orjson
import redis

from riskservice.errors import InvalidParameter
from riskservice.limits.clock import Clock


def now_ms(clock: Clock, client: redis.Redis | redis.RedisCluster) -> int:
    """The review clock: the injected one (tests), else Redis server time.

    Redis time is the decision path's clock too, so a dossier's window counts
    agree with what the next decision would see.
    """
    given = clock.now_ms()
    if given is not None:
        return given
    sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000


def text(value: bytes | str | None) -> str | None:
    """A Redis reply as text (None stays None)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def decode_hash(raw: Any) -> dict[str, str]:
    """``HGETALL`` as a ``str -> str`` dict."""
    return {cast(str, text(k)): cast(str, text(v)) for k, v in cast(dict[bytes, bytes], raw).items()}


def encode_cursor(*parts: Any) -> str:
    """An opaque page cursor (URL-safe): clients pass it back, never build it."""
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The parts of a cursor from :func:`encode_cursor`; 400 naming ``cursor`` when it is not one.

    Only the shape is checked here; the caller checks each part's type,
    since a client can base64 any JSON it likes.
    """
    parts: Any = None
    if len(cursor) <= MAX_CURSOR and cursor.isascii():
        try:
            parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            parts = None
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidParameter("cursor is not one this API returned", {"cursor": "invalid"})
    return parts


# A cursor holds a score and an id (at most 128 characters, 4 bytes each in UTF-8).
MAX_CURSOR = 1024


def ban_in_force(ban: dict[str, str] | None, now_ms: int) -> bool:
    """A ban applies until its ``until`` (0: until lifted); its key lives a day longer."""
    if not ban:
        return False
    until = int(ban.get("until") or 0)
    return until == 0 or until > now_ms


def cooling_down(ban: dict[str, str] | None, now_ms: int) -> bool:
    """A rule's cool-down in force: the timed ban a device's repeated failed
    challenges set (actor ``rule``, challenge.lua). It ends by itself and is no
    analyst's verdict, so it leaves the device's review status as it was."""
    return ban_in_force(ban, now_ms) and (ban or {}).get("actor") == "rule"


def blocked_by_hand(ban: dict[str, str] | None, now_ms: int) -> bool:
    """A ban an analyst or an operator set, in force (a rule's cool-down is not one)."""
    return ban_in_force(ban, now_ms) and not cooling_down(ban, now_ms)
