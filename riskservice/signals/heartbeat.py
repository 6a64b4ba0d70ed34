"""The signal consumer's heartbeat: whether it runs, and how far behind the
share-event stream it is.

Real-time signals are only as fresh as the consumer that computes them. A
consumer that died, cannot reach Redis, or reads slower than shares arrive
(one consumer follows a few thousand entries a second) leaves decisions
judged on stale flags, and nothing in an answer says so. The consumer
therefore writes one small hash, :data:`HEARTBEAT_KEY`, at most once a
second (fields in :class:`Beat`), and ``/readyz`` and ``/metrics`` judge it
(:func:`status_of`):

- ``ok``: a beat within :data:`DOWN_AFTER_MS`, and a lag under :data:`LAG_WARN_MS`;
- ``lagging``: the newest entry it applied was added to the stream more than
  :data:`LAG_WARN_MS` before its beat (it is behind, or was stopped and is
  catching up);
- ``starting``: it is rebuilding its state from the stream's window (a beat
  is written when the rebuild begins; a rebuild can take minutes on a busy
  stream, up to :data:`REBUILD_LIMIT_MS`);
- ``down``: no beat for :data:`DOWN_AFTER_MS` (dead, stuck, or cut off from
  Redis), or a rebuild that never finished;
- ``absent``: no consumer has ever beaten here (``RISK_SIGNALS=0``, or none started yet);
- ``unknown``: the hash could not be read (Redis, or its master, is away).

The lag is the consumer's clock minus the stream id's time (Redis' clock):
clocks apart by more than a second or so move it by as much. A consumer
with nothing to read has no lag. The hash has the same hash tag as the
board (``{signals}``) and expires a day after the last beat.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis

__all__ = ["DOWN_AFTER_MS", "HEARTBEAT_KEY", "LAG_WARN_MS", "Beat", "ConsumerStatus", "Heartbeat", "exposition",
           "read_status", "status_of"]

HEARTBEAT_KEY = "risk:{signals}:consumer"
TTL_MS = 86_400_000
#: No beat for this long: the consumer is down.
DOWN_AFTER_MS = 10_000
#: Applying entries older than this: it is lagging.
LAG_WARN_MS = 5_000
#: A rebuild that has not finished after this long is taken as dead.
REBUILD_LIMIT_MS = 900_000

#: ("unknown": Redis did not answer the read.)
State = Literal["ok", "lagging", "starting", "down", "absent", "unknown"]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Beat:
    """One beat of the consumer (the hash's fields)."""

    name: str
    pid: int
    #: the consumer's clock at this beat (ms)
    seen_ms: int
    #: age of the newest entry applied, at this beat (ms; 0 when nothing is left to read)
    lag_ms: int
    #: entries applied since this process started
    fed: int
    started_ms: int
    #: "rebuilding" (re-reading the window) or "following"
    phase: str
    #: the server it runs on (one consumer works for the whole service: which?)
    host: str = ""

    def fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> Beat | None:
        """A beat from the hash (None when absent or not one this release wrote)."""
        text = {k.decode(): v.decode() for k, v in raw.items()}
        try:
            return cls(name=text["name"], pid=int(text["pid"]), seen_ms=int(text["seen_ms"]),
                       lag_ms=int(text["lag_ms"]), fed=int(text["fed"]), started_ms=int(text["started_ms"]),
                       phase=text["phase"], host=text.get("host", ""))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    """What the last beat says at a given time."""

    state: State
    lag_s: float | None = None
    last_beat_s: float | None = None
    name: str | None = None
    host: str | None = None
    pid: int | None = None
    fed: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def status_of(beat: Beat | None, now_ms: int) -> ConsumerStatus:
    """Judge ``beat`` at ``now_ms``.

    Examples
    --------
    >>> beat = Beat("signals-1", 7, seen_ms=1_000, lag_ms=20, fed=5, started_ms=0, phase="following")
    >>> status_of(beat, 2_000).state, status_of(beat, 12_000).state, status_of(None, 0).state
    ('ok', 'down', 'absent')
    """
    if beat is None:
        return ConsumerStatus("absent")
    age = max(now_ms - beat.seen_ms, 0)
    state: State
    if beat.phase == "rebuilding":
        state = "starting" if age <= REBUILD_LIMIT_MS else "down"
    elif age > DOWN_AFTER_MS:
        state = "down"
    elif beat.lag_ms > LAG_WARN_MS:
        state = "lagging"
    else:
        state = "ok"
    return ConsumerStatus(state, None if beat.phase == "rebuilding" else beat.lag_ms / 1000, age / 1000,
                          beat.name, beat.host or None, beat.pid, beat.fed)


def read_status(client: redis.Redis | redis.RedisCluster, now_ms: int | None = None) -> ConsumerStatus:
    """The consumer's status from its hash (one ``HGETALL``)."""
    raw = client.hgetall(HEARTBEAT_KEY)
    return status_of(Beat.parse(raw) if raw else None, wall_ms() if now_ms is None else now_ms)  # type: ignore[arg-type]


class Heartbeat:
    """Writes a consumer's beats: when its rebuild begins, then at most once per ``interval_ms``.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        Where the hash is.
    name : str
        The consumer's name in its group.
    clock : callable, optional
        Wall-clock ms (injectable for tests).
    interval_ms : int
        Least time between two beats while following.
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, name: str, *,
                 clock: Callable[[], int] = wall_ms, interval_ms: int = 1000) -> None:
        self.client, self.name, self.clock, self.interval_ms = client, name, clock, interval_ms
        self.started_ms = clock()
        self.fed = 0
        self.lag_ms = 0
        self.last_beat: int | None = None
        self.phase = "rebuilding"
        self.newest_ms: int | None = None

    def rebuilding(self) -> None:
        """The rebuild begins (beats stop until it ends: it is one long read)."""
        self._write("rebuilding", self.clock())

    def polled(self, fed: int, newest_ms: int | None, backlog: bool) -> bool:
        """After a round that applied ``fed`` entries, the newest added at
        ``newest_ms`` (stream id time), ``backlog`` when more were waiting.
        Returns whether a beat was written."""
        now = self.clock()
        self.fed += fed
        if fed and newest_ms is not None:
            self.newest_ms = newest_ms if self.newest_ms is None else max(self.newest_ms, newest_ms)
        if not fed and not backlog:
            self.lag_ms = 0  # nothing left to read: caught up
        elif self.newest_ms is not None:
            # Behind, or stalled with more to read: the newest entry applied keeps ageing.
            self.lag_ms = max(now - self.newest_ms, 0)
        # (The first round after a rebuild beats at once: "starting" ends with it.)
        if self.phase == "following" and self.last_beat is not None and now - self.last_beat < self.interval_ms:
            return False
        self._write("following", now)
        return True

    def _write(self, phase: str, now: int) -> None:
        beat = Beat(self.name, os.getpid(), now, self.lag_ms, self.fed, self.started_ms, phase, socket.gethostname())
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(HEARTBEAT_KEY, mapping=beat.fields())  # type: ignore[arg-type]
        pipe.pexpire(HEARTBEAT_KEY, TTL_MS)
        pipe.execute()
        self.last_beat, self.phase = now, phase


class _StatusCollector:
    """The status as gauges, for one scrape."""

    def __init__(self, status: ConsumerStatus) -> None:
        self.status = status

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        s = self.status
        up = GaugeMetricFamily("risk_signals_consumer_up",
                               "1 when the signal consumer beat within the last 10 s (rebuilding counts)")
        up.add_metric([], 1.0 if s.state in ("ok", "lagging", "starting") else 0.0)
        yield up
        if s.lag_s is not None:
            yield GaugeMetricFamily("risk_signals_consumer_lag_seconds",
                                    "Age of the newest share event the consumer applied, at its last beat",
                                    value=s.lag_s)
        if s.last_beat_s is not None:
            yield GaugeMetricFamily("risk_signals_consumer_last_beat_age_seconds",
                                    "Time since the signal consumer's last beat", value=s.last_beat_s)


def exposition(status: ConsumerStatus) -> bytes:
    """The consumer's gauges in the Prometheus text format (``/metrics`` appends them).

    Computed from the heartbeat when scraped, so a dead consumer shows as
    down rather than as its last values.
    """
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status))
    return generate_latest(registry)
