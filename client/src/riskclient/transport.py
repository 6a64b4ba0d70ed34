"""HTTP under a deadline: pooled keep-alive connections, one retry, no sleeping.

One :class:`Transport` holds one urllib3 ``PoolManager``, which is safe to
share between threads; the transport keeps no other mutable state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from riskclient.errors import TransportError, api_error

# Statuses worth a second attempt: the service (or a proxy in front of it)
# failed or shed load, and the same request may well succeed at once.
# Every endpoint is idempotent (event_id, decision_id), so a retry counts once.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer: the decoded JSON body, the headers and how many attempts it took."""

    data: Any
    headers: Mapping[str, str]
    attempts: int


class Transport:
    """POSTs JSON to the service, retrying once within a per-call deadline.

    Parameters
    ----------
    base_url : str
        ``http://host:port`` or ``https://host:port`` of the service.
    api_key : str
        Sent as ``Authorization: Bearer <key>``.
    maxsize : int
        Connections kept alive per host; more concurrent calls open extra
        connections rather than wait for one (the pool never blocks).
    user_agent : str
        The ``User-Agent`` header.
    clock : callable
        Monotonic seconds; injectable for tests.
    """

    def __init__(self, base_url: str, api_key: str, *, maxsize: int = 10, user_agent: str = "riskclient",
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], not {base_url!r}")
        if not api_key:
            raise ValueError("api_key is required")
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=maxsize, block=False, retries=False,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                     "Accept": "application/json", "User-Agent": user_agent},
        )

    def post(self, path: str, body: Mapping[str, Any], deadline_s: float) -> Answer:
        """POST ``body`` as JSON to ``path`` and return the 2xx answer.

        Parameters
        ----------
        path : str
            The endpoint, e.g. ``/v1/decisions``.
        body : mapping
            The JSON object to send (the same bytes on both attempts).
        deadline_s : float
            Seconds for the whole call: connecting, sending, waiting and the
            retry. A second attempt is made only after a connection error or
            a 5xx (also 408 and 429), and only while time is left.

        Returns
        -------
        Answer
            The decoded body and headers.

        Raises
        ------
        ApiError
            A 4xx other than 408 and 429, typed by its status, with the
            service's error shape when it has one (never retried).
        TransportError
            No usable answer in time.
        """
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        url = self.base_url + path
        end = self.clock() + deadline_s
        failure = TransportError("timeout", f"no time left to call {path}", 0)
        for attempt in range(1, ATTEMPTS + 1):
            remaining = end - self.clock()
            if remaining <= 0:
                break
            try:
                resp = self._pool.request("POST", url, body=payload, timeout=urllib3.Timeout(total=remaining),
                                          retries=False, redirect=False)
            except (HTTPError, OSError) as exc:  # refused, reset, closed mid-answer, timed out
                failure = self._failure(exc, attempt, end)
                continue
            if resp.status in RETRY_STATUSES or resp.status >= 500:
                failure = TransportError("unavailable", f"HTTP {resp.status} from {path}", attempt, resp.status)
                continue
            data = _json(resp.data)
            if resp.status >= 400:  # a 4xx is an error of the request, with or without the error shape
                raise api_error(resp.status, data)
            if resp.status >= 300 or data is None:
                raise TransportError("bad_response", f"HTTP {resp.status} from {path} is not the service's JSON",
                                     attempt, resp.status)
            return Answer(data, resp.headers, attempt)
        raise failure

    def _failure(self, exc: BaseException, attempt: int, end: float) -> TransportError:
        # NewConnectionError (refused, unreachable) subclasses urllib3's
        # ConnectTimeoutError, so it is told apart first. A failure at the
        # deadline is a timeout whatever urllib3 called it (a read timeout
        # of 0 s surfaces as a socket error).
        timed_out = isinstance(exc, Urllib3Timeout) and not isinstance(exc, NewConnectionError)
        kind = "timeout" if timed_out or self.clock() >= end else "unavailable"
        return TransportError(kind, f"{type(exc).__name__}: {exc}", attempt)

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()


def _json(body: bytes) -> Any:
    """The decoded JSON body, or ``None`` if it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None
