"""The review service: what the analysts' API and console ask of Redis.

The views call these methods and never Redis itself; every Redis error comes
out as :class:`riskservice.errors.StorageError`, which the app answers with
one ``503`` shape. The functions behind them (``queue``, ``dossier``,
``neighbourhood``, ``actions``, ``audit``, ``verify``) take a client and stay
plain functions over Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis

from riskservice.errors import StorageError
from riskservice.limits.clock import Clock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.store import RedisStore
from riskservice.limits.topology import is_cluster
from riskservice.policy.load import Policy
from riskservice.review import actions, audit, ban_ends, dossier, neighbourhood, queue
from riskservice.review.common import now_ms
from riskservice.review.verify import verify

__all__ = ["ReviewService"]


# How often one worker sweeps a cluster's slots for ended bans when listing.
CLUSTER_SWEEP_MS = 1000


@contextmanager
def _storage(what: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StorageError(f"cannot {what}: {exc}") from exc


class ReviewService:
    """Review operations over the service's Redis.

    Parameters
    ----------
    store : RedisStore
        The decision path's store (its client, and its ban helpers for the dossier).
    policy : callable
        The policy in force (window limits shown in the dossier).
    clock : Clock
        The decision path's clock; times in answers are on it.
    """

    def __init__(self, store: RedisStore | ClusterStore, policy: Callable[[], Policy], clock: Clock) -> None:
        self.store = store
        # A RedisCluster on Redis Cluster: the review modules take either, and
        # branch on riskservice.limits.topology.is_cluster where they differ.
        self.client = cast(redis.Redis, store.client)
        self.policy = policy
        self.clock = clock
        # When this worker last swept every slot for ended bans (Redis Cluster only).
        self._swept_at: int | None = None

    def now_ms(self) -> int:
        with _storage("read the clock"):
            return now_ms(self.clock, self.client)

    def queue(self, *, status: str, reason: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        """A page of flagged (``status="open"``) or resolved devices.

        Timed bans that have ended are settled first (``review/ban_ends.py``):
        their devices leave the ``blocked`` list, and are queued by their evidence.
        """
        now = self.now_ms()
        with _storage("read the review queue"):
            # On Redis Cluster the sweep reads a shard of every slot (about half
            # a page's own cost): an analyst paging through the lists pays it
            # once a second, and a ban that ended meanwhile is settled by the
            # next sweep, as lazily as any.
            if (not is_cluster(self.client) or self._swept_at is None
                    or not 0 <= now - self._swept_at < CLUSTER_SWEEP_MS):
                ban_ends.settle_due(self.client, now, self.policy().review)
                self._swept_at = now
            return queue.list_devices(self.client, status=status, reason=reason, limit=limit, cursor=cursor)

    def dossier(self, device_id: str) -> dict[str, Any]:
        """Counters, recent decisions, users, scores and history of a device (404 if never seen);
        its timed ban, if it has ended, is settled first (``review/ban_ends.py``)."""
        now = self.now_ms()
        with _storage("read the dossier"):
            ban_ends.settle_device(self.client, device_id, now, self.policy().review)
            return dossier.build(self.client, self.store, self.policy(), device_id, now)

    def neighbourhood(self, device_id: str, hops: int) -> tuple[Any, bool, int | None]:
        """The device's neighbourhood graph, whether the cap cut it, and the score version."""
        with _storage("read the neighbourhood"):
            dossier.require_known(self.client, device_id)
            return neighbourhood.neighbourhood(self.client, device_id, hops)

    def graph_json(self, device_id: str, hops: int) -> dict[str, Any]:
        graph, truncated, version = self.neighbourhood(device_id, hops)
        return neighbourhood.to_json(graph, device_id, hops, truncated, version)

    def act(self, device_id: str, req: actions.ActionRequest, *, actor: str) -> dict[str, Any]:
        """Carry out an action and its audit entry in one transaction."""
        now = self.now_ms()
        with _storage("apply the action"):
            return actions.apply(self.client, device_id, req, actor=actor, now_ms=now)

    def audit(self, *, entity: str | None, actor: str | None, since_ms: int | None, until_ms: int | None,
              limit: int, before_seq: int | None) -> tuple[list[dict[str, Any]], int | None]:
        """Audit entries, newest first, and the seq to continue before."""
        with _storage("read the audit trail"):
            return audit.query(self.client, entity=entity, actor=actor, since_ms=since_ms, until_ms=until_ms,
                               limit=limit, before_seq=before_seq)

    def verify(self) -> dict[str, Any]:
        """Recompute the audit chain and check its indexes."""
        with _storage("verify the audit trail"):
            return verify(self.client)
