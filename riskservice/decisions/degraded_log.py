"""Why decisions are answered degraded, in the log, rate-limited per kind of reason."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from riskservice.errors import StorageError

__all__ = ["DegradedLog", "reason_kind"]

log = logging.getLogger("riskservice.decisions")

# A word of a reason that names a key or a node (``risk:{d:…}``, ``10.0.0.3:6379``).
_PARTICULAR = re.compile(r"\S*[:{]\S*")


def reason_kind(reason: str) -> str:
    """A degraded answer's reason without its particulars (the driver's error,
    a key, a node): what its log lines are counted under.

    >>> reason_kind("redis cluster call failed: Error 32 while writing to socket. Broken pipe.")
    'redis cluster call failed'
    >>> reason_kind("no master serves the slot of risk:{d:dev-1}:w")
    'no master serves the slot of …'
    """
    return _PARTICULAR.sub("…", reason.split(": ", 1)[0])


class DegradedLog:
    """Says in the log why decisions are answered degraded (fail-open or the
    fail mode's floor): at most one line per kind of reason
    (:func:`reason_kind`) per ``interval_s`` in this process, giving the
    whole reason and how many answers of that kind went unlogged since its
    last line.

    Without it only connection failures were logged (by the store): a
    decision that reached Redis after its deadline, a script error, a full
    queue, an open breaker were visible only as counters. Rate-limited,
    since during an outage every decision is degraded.

    Parameters
    ----------
    interval_s : float
        Least time between two lines of one kind.
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.clock = interval_s, clock
        self._said_at: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def note(self, error: StorageError) -> None:
        """One degraded answer, for ``error``. (Two threads racing here may
        both log a line: harmless, and cheaper than a lock on every call.)"""
        reason = str(error)
        kind = reason_kind(reason)
        now = self.clock()
        said = self._said_at.get(kind)
        if said is not None and now - said < self.interval_s:
            self._unsaid[kind] = self._unsaid.get(kind, 0) + 1
            return
        self._said_at[kind] = now
        log.warning("decision answered degraded", extra={"reason": reason,
                                                          "unlogged_since": self._unsaid.pop(kind, 0)})
