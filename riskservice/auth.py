"""Bearer-key authentication with roles.

Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`
against every configured key, so the time taken does not reveal how much of
a guess was right. An ``admin`` key may also do what an ``analyst`` may.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
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
        entries = [(hashlib.sha256(k.key.encode()).digest(), k.role) for k in keys]
        # The principal of each digest (one key may be configured with
        # several roles), made once rather than on every request.
        roles: dict[bytes, set[str]] = {}
        for digest, role in entries:
            roles.setdefault(digest, set()).update(IMPLIED[role])
        self._entries = [(digest, Principal(key_id=digest.hex()[:12], roles=frozenset(roles[digest])))
                         for digest, _ in entries]

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        # Every entry is compared, whatever matched before.
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        return found


def authenticate(header: str, keyring: KeyRing) -> Principal:
    """The principal of an ``Authorization`` header's bearer key (401 when missing or unknown)."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'", {"Authorization": "missing"})
    principal = keyring.identify(token)
    if principal is None:
        raise Unauthorized("the API key is not valid", {"Authorization": "invalid key"})
    return principal


def authorize(environ: Mapping[str, Any], keyring: KeyRing, allowed: frozenset[str]) -> Principal:
    """The caller of a WSGI request, if its key carries one of ``allowed`` roles (401, 403 otherwise)."""
    # The WSGI environ's header, not ``request.headers`` (which builds a
    # header view on each request).
    principal = authenticate(environ.get("HTTP_AUTHORIZATION", ""), keyring)
    if principal.roles.isdisjoint(allowed):
        refused = Forbidden(f"this endpoint needs a key with role {' or '.join(sorted(allowed))}",
                            {"Authorization": "wrong role"})
        refused.principal = principal  # (the access log names the key that was refused)
        raise refused
    return principal


def require(*roles: str) -> Callable[[F], F]:
    """Allow the view only to keys carrying one of ``roles``."""

    allowed = frozenset(roles)

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                g.principal = authorize(request.environ, risk_state().keyring, allowed)
            except Forbidden as refused:
                g.principal = refused.principal
                raise
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
