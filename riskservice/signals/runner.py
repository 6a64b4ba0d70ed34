"""The consumer process's loop: follow the stream while holding the lease,
stand by while another consumer holds it (riskservice/signals/lease.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from riskservice.signals.consumer import SignalConsumer
from riskservice.signals.lease import Lease, LeaseLost

__all__ = ["run_consumer"]

log = logging.getLogger("riskservice.signals")


def run_consumer(client: redis.Redis | redis.RedisCluster, lease: Lease, stopping: threading.Event, *,
                 name: str = "signals-1", batch: int = 1000, alive: Callable[[], bool] | None = None,
                 standby_s: float = 1.0) -> SignalConsumer | None:
    """Follow the share-event stream whenever this process holds ``lease``,
    until ``stopping`` is set (or ``alive()`` is false); the last consumer run.

    Each time it takes the lease it starts a fresh consumer, which rebuilds
    its state from the stream's window: a standby has no state to trust.
    The lease is released on the way out, so a standby takes over at once.
    """
    consumer: SignalConsumer | None = None
    standing_by = False

    def going() -> bool:
        return not stopping.is_set() and (alive is None or alive())

    try:
        while going():
            try:
                if not lease.acquire():
                    if not standing_by:
                        log.info("signal consumer standing by: another holds the lease",
                                 extra={"holder": lease.current()})
                        standing_by = True
                    stopping.wait(standby_s)
                    continue
                standing_by = False
                log.info("signal consumer holds the lease", extra={"holder": lease.holder})
                consumer = SignalConsumer(client, name=name, batch=batch, lease=lease, stopping=stopping)
                consumer.start()  # (logs how many recent events it re-read)
                consumer.run(alive=alive)
            except LeaseLost:
                log.warning("signal consumer lost its lease; standing by", extra={"holder": lease.holder})
            except redis.RedisError as exc:
                log.warning("signal consumer: redis error, retrying", extra={"error": str(exc)})
                stopping.wait(1.0)
    finally:
        try:
            lease.release()
        except redis.RedisError:
            pass  # it runs out on its own
    return consumer
