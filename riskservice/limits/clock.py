"""Clocks for the limiter.

Production uses the Redis server's clock, read inside the script, so app
servers with skewed clocks agree on every window. Tests and backtests inject a
:class:`ManualClock` whose time they set, so nothing ever sleeps.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Gives the time a decision is judged at, or None for the store's own clock."""

    def now_ms(self) -> int | None: ...


class ServerClock:
    """Defer to the store: Redis ``TIME`` inside the script."""

    def now_ms(self) -> int | None:
        return None


class ManualClock:
    """A clock that moves only when told to.

    >>> clock = ManualClock(1_000)
    >>> clock.advance(2.5); clock.now_ms()
    3500
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = int(start_ms)

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = int(now_ms)

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1000)
