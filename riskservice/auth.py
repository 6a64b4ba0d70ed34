"""Bearer-key authentication with roles.

Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`
against every configured key, so the time taken does not reveal how much of
a guess was right. An ``admin`` key may also do what an ``analyst`` may.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from config.settings import ApiKey
from riskservice.errors import Forbidden, Unauthorized
from riskservice.state import risk_state

F = TypeVar("F", bound=Callable[..., Any])
IMPLIED = {"admin": {"admin", "analyst"}, "analyst": {"analyst"}, "issuer": {"issuer"}}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's short id (for audit) and its roles."""

    key_id: str
    roles: frozenset[str]


class KeyRing:
    """The configured keys, kept only as digests."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._entries = [(hashlib.sha256(k.key.encode()).digest(), k.role) for k in keys]

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        roles: set[str] = set()
        for known, role in self._entries:
            if hmac.compare_digest(known, digest):
                roles |= IMPLIED[role]
        if not roles:
            return None
        return Principal(key_id=digest.hex()[:12], roles=frozenset(roles))


def authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'", {"Authorization": "missing"})
    principal: Principal | None = risk_state().keyring.identify(token.strip())
    if principal is None:
        raise Unauthorized("the API key is not valid", {"Authorization": "invalid key"})
    return principal


def require(*roles: str) -> Callable[[F], F]:
    """Allow the view only to keys carrying one of ``roles``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if not principal.roles & set(roles):
                raise Forbidden(f"this endpoint needs a key with role {' or '.join(roles)}",
                                {"Authorization": "wrong role"})
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
