"""Optimistic Redis transactions: WATCH, read, MULTI, write, retried on a race,
a bounded number of times.

Every multi-key write outside the decision scripts (review actions and their
audit entries, the audit trail and its trimming, the graph-score version
flip) goes through :func:`optimistic`, so a race is retried the same way
everywhere and a hot key can never make a request loop forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from riskservice.errors import StorageError

__all__ = ["ATTEMPTS", "optimistic"]

T = TypeVar("T")
# Concurrent writers of one key (workers auditing at once) win within a few
# rounds; this many means something keeps rewriting it.
ATTEMPTS = 32


def optimistic(client: redis.Redis, watch: Sequence[str], body: Callable[[Any], T],
               attempts: int = ATTEMPTS) -> T:
    """Run ``body`` in one transaction watched on ``watch``.

    ``body(pipe)`` reads through ``pipe`` (immediate mode), calls
    ``pipe.multi()`` and queues its writes; its return value is returned once
    the transaction commits. When a watched key changed meanwhile, everything
    is read again and retried, at most ``attempts`` times.

    Raises
    ------
    StorageError
        When every attempt lost a race.
    """
    with client.pipeline(transaction=True) as pipe:
        for _ in range(attempts):
            try:
                pipe.watch(*watch)  # type: ignore[no-untyped-call]
                result = body(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                pipe.reset()
    raise StorageError(f"gave up after {attempts} transactions raced on {', '.join(watch)}")
