"""One signal consumer for the whole service, however many app servers start one.

Every gunicorn master starts a consumer (``RISK_SIGNALS`` is on by
default), and a service runs on several servers. Two consumers in one
group split the stream between them: each would judge half the shares, and
every signal would see half its evidence. So a consumer follows the stream
only while it holds the **lease**, :data:`LEASE_KEY` (``SET NX PX``, the
holder's name as value): the others stand by, try again every second, and
take over (rebuilding from the stream's window) once the holder is gone
and its lease has run out, within ``ttl_ms`` (30 s).

The holder renews the lease at most every ``ttl_ms / 10`` while it works
(between two reads, and during its rebuild); a holder that finds the lease
gone or taken stops following at once. A holder paused for longer than
the lease (a stopped process, a long pause of the machine) may apply one
more batch after another took over: both write the values their own state
gives, the newer holder's from a complete rebuild, and the next change
rewrites them.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable

import redis

__all__ = ["LEASE_KEY", "Lease", "LeaseLost", "holder_name"]

LEASE_KEY = "risk:{signals}:lease"

# Renew (PEXPIRE) or release (DEL) only a lease this holder still holds.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class LeaseLost(Exception):
    """The lease ran out or another consumer holds it: stop following."""


def holder_name() -> str:
    """This process's name as a lease holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The consumer lease on ``client`` for ``holder``.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        Where the lease is.
    holder : str
        This consumer's name (:func:`holder_name`).
    ttl_ms : int
        How long the lease outlives its last renewal.
    clock : callable, optional
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, holder: str, *, ttl_ms: int = 30_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.holder, self.ttl_ms, self.clock = client, holder, ttl_ms, clock
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.renewed_at: float | None = None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (or this holder already does)."""
        if self.client.set(LEASE_KEY, self.holder, nx=True, px=self.ttl_ms) or self._extend():
            self.renewed_at = self.clock()
            return True
        return False

    def keep(self) -> bool:
        """Renew the lease if a tenth of its time went by since the last renewal;
        False when it is no longer this holder's."""
        if self.renewed_at is None:
            return False
        if self.clock() - self.renewed_at < self.ttl_ms / 10_000:
            return True
        if self._extend():
            self.renewed_at = self.clock()
            return True
        self.renewed_at = None
        return False

    def check(self) -> None:
        """:meth:`keep`, raising :class:`LeaseLost` when the lease is gone."""
        if not self.keep():
            raise LeaseLost(f"the signal consumer lease is no longer {self.holder}'s")

    def release(self) -> None:
        """Give the lease up (a standby takes over at once), if this holder holds it."""
        self._release(keys=[LEASE_KEY], args=[self.holder])
        self.renewed_at = None

    def current(self) -> str | None:
        """Who holds the lease now."""
        value = self.client.get(LEASE_KEY)
        return value.decode() if isinstance(value, bytes) else value

    def _extend(self) -> bool:
        return bool(self._renew(keys=[LEASE_KEY], args=[self.holder, self.ttl_ms]))
