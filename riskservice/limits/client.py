"""The Redis client of the decision path: a time budget and a circuit breaker.

A slow or dead Redis must never hold up the caller: every call fails within
the budget, and after a failure the store refuses at once for a short
cool-down, then tries again, so it recovers by itself within a cool-down of
Redis answering again.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(url: str, budget_ms: int) -> redis.Redis:
    """A client whose every call fails within ``budget_ms``.

    The budget is split between connecting and answering so that even a call
    that must open a connection stays within it; no retries, since a retry
    would break the budget and a decision is cheap to degrade.
    """
    half = budget_ms / 2000
    return redis.Redis.from_url(
        url,
        socket_timeout=half,
        socket_connect_timeout=half,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        protocol=2,
    )


class CircuitBreaker:
    """Open for ``cooldown_ms`` after a failure, then closed again.

    There is no half-open state letting one call probe while the others are
    refused: that left concurrent requests degraded for a cool-down after
    Redis was back. Every call after the cool-down tries, each within the
    budget, and any failure opens the breaker again.
    """

    def __init__(self, cooldown_ms: int) -> None:
        self._cooldown = cooldown_ms / 1000
        self._open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        return time.monotonic() >= self._open_until

    def failure(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self._cooldown

    def success(self) -> None:
        if self._open_until:
            with self._lock:
                self._open_until = 0.0
