"""The issuer's per-share endpoints served as plain WSGI, ahead of Flask's dispatch.

Why: every share costs the issuer a decision and, once delivered, an outcome
report, so these two endpoints carry nearly all of the traffic. Flask's
request machinery (the request and application contexts, URL matching,
signals, the ``Response`` object and its header lists) costs about 100 µs of
CPU per request on our 2-core benchmark machine, as much again as the
decision's own Python around its Redis call. Served here, a request goes
straight from the WSGI environ to its handler.

What does not change: the URL, the keys and roles (:func:`riskservice.auth.authorize`),
the body rules (size limit, ``Content-Type``, one JSON object, no key given
twice: :mod:`riskservice.api.body`), the one JSON error shape, the metrics
and the access log (:func:`riskservice.api.access.record_request`). Every
other path goes to Flask unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from riskservice.api.access import record_request
from riskservice.api.body import is_json, not_json, parse_body, read_body
from riskservice.api.decisions import Answer, answer_decision, answer_outcome
from riskservice.api.responses import INTERNAL_ERROR, unavailable
from riskservice.auth import Principal, authorize
from riskservice.errors import ApiError, Forbidden, MethodNotAllowed, StorageError
from riskservice.state import RiskState

error_log = logging.getLogger("riskservice.error")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# "200 OK", "422 Unprocessable Entity", ...: WSGI status lines, made once.
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_JSON = ("Content-Type", "application/json")
# Flask answers OPTIONS for every route with the methods it allows; so do we.
_ALLOW = "OPTIONS, POST"


@dataclass(frozen=True)
class Route:
    """A ``POST``-only JSON endpoint: the roles a key needs, and what answers it."""

    roles: frozenset[str]
    handler: Callable[[RiskState, dict[str, object]], Answer]


ROUTES: Mapping[str, Route] = {
    "/v1/decisions": Route(frozenset({"issuer"}), answer_decision),
    "/v1/outcomes": Route(frozenset({"issuer"}), answer_outcome),
}


class HotPath:
    """WSGI middleware answering :data:`ROUTES` itself and passing every other request to ``app``.

    Parameters
    ----------
    app : callable
        Flask's WSGI callable (``Flask.wsgi_app``).
    state : RiskState
        The service's state (keys, engine, metrics).
    max_body_bytes : int
        The largest body accepted (413 beyond), as for Flask's endpoints.
    """

    def __init__(self, app: WsgiApp, state: RiskState, max_body_bytes: int) -> None:
        self.app = app
        self.state = state
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = ROUTES.get(path)
        if route is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        principal: Principal | None = None
        extra: Mapping[str, str] = {}
        try:
            method = environ["REQUEST_METHOD"]
            if method != "POST":
                if method == "OPTIONS":
                    status, payload, extra = 200, b"", {"Allow": _ALLOW}
                else:
                    raise _not_allowed(method, path)
            else:
                principal = authorize(environ, self.state.keyring, route.roles)
                if not is_json(environ.get("CONTENT_TYPE")):
                    raise not_json()
                answer = route.handler(self.state, parse_body(read_body(environ, self.max_body_bytes)))
                status, payload, extra = 200, orjson.dumps(answer.body), answer.headers
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.to_dict())
            if isinstance(exc, MethodNotAllowed):
                extra = {"Allow": _ALLOW}
            elif isinstance(exc, Forbidden):
                principal = exc.principal
        except StorageError as exc:
            # Only an endpoint that cannot degrade gets here (a decision degrades instead).
            error_log.warning("redis unavailable", extra={"path": path, "error": str(exc)})
            gone = unavailable()
            status, payload, extra = gone.status, orjson.dumps(gone.to_dict()), {"Retry-After": "1"}
        except Exception:
            error_log.exception("unhandled error", extra={"path": path})
            status, payload, extra = 500, orjson.dumps(INTERNAL_ERROR), {}
        headers = [_JSON, ("Content-Length", str(len(payload))), *extra.items()] if payload else \
            [("Content-Length", "0"), *extra.items()]
        start_response(_STATUS[status], headers)
        record_request(self.state.metrics, path, method=environ.get("REQUEST_METHOD", ""), path=path,
                       status=status, seconds=time.perf_counter() - started,
                       remote=environ.get("REMOTE_ADDR"), principal=principal)
        return [payload]


def _not_allowed(method: str, path: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"{method} is not allowed on {path}")
