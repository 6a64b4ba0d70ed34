"""Redis Cluster: what follows a decision (outcomes, challenge results,
shares allowed during an outage) and reward checks, each on the slots of
the keys it touches; see :mod:`riskservice.limits.cluster`."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import redis

from riskservice.errors import StorageError
from riskservice.limits.cluster_io import SETTLE, ClusterIO, Command
from riskservice.limits.keys import (
    EVENTS,
    ban_key,
    challenge_keys,
    device_prefix,
    device_slot_keys,
    graph_node_key,
    once_key,
    pending_key,
    shard_of,
)
from riskservice.limits.outage import MissedShare
from riskservice.limits.records import DecisionRecord
from riskservice.limits.scripts import CHALLENGE, OUTCOME, RECONCILE
from riskservice.limits.settles import SettleQueue, UserWrite

__all__ = ["ClusterLifecycle", "graph_version"]

log = logging.getLogger("riskservice.cluster")
# How long a place is held without its settle: far longer than a settle takes
# (milliseconds, batched), far shorter than any window.
HOLD_MS = 5000


def graph_version(fast_key: str) -> int | None:
    """The version of a ``risk:...:v<N>:fast`` key (None: no scores yet).

    >>> graph_version("risk:{graph}:v12:fast"), graph_version("risk:graph:none")
    (12, None)
    """
    part = fast_key.rsplit(":", 2)
    return int(part[1][1:]) if len(part) == 3 and part[2] == "fast" and part[1][1:].isdigit() else None


class ClusterLifecycle(ClusterIO):
    """Outcomes, challenge results, reconciliation and reward checks on a cluster."""

    def __init__(self, client: redis.RedisCluster, hold_ms: int = HOLD_MS, retention_ms: int = 30 * 86_400_000,
                 **io: Any) -> None:
        super().__init__(client, **io)
        self.hold_ms = hold_ms
        self.retention_ms = retention_ms
        # writes on users' slots that follow a decision (settles), retried until they land
        self.settles = SettleQueue(self._scripted, node_of=lambda key: self.node_of(key).name,
                                   wait=(self.wait_replicas, self.wait_ms) if self.wait_replicas else None)

    def outcome(self, record_key: str, *, delivered: int, opened: int, claimed: int, window_ms: int, cap: int,
                now_ms: int | None, retention_ms: int | None = None, events: str = EVENTS
                ) -> tuple[str, dict[str, Any] | None]:
        """Record a share's outcome (``lua/outcome.lua``) in its device's slot; returns (status, record)."""
        keys = (record_key, f"{device_prefix(record_key)}:outcomes", shard_of(events, record_key))
        args = ("" if now_ms is None else now_ms, delivered, opened, claimed, window_ms, cap,
                retention_ms or self.retention_ms)
        status, flat = self.run(OUTCOME, keys, args)
        return status.decode(), DecisionRecord.parse(flat)

    def challenge(self, record_key: str, user_log_key: str, *, passed: bool, kind: str, plan: bytes,
                  now_ms: int | None, retention_ms: int, events: str = EVENTS
                  ) -> tuple[str, dict[str, Any] | None, bool]:
        """Record a challenge result on the device's slot; a pass that counted
        then takes the share into the user's log on the user's slot (a second
        call: if it fails, the user's window misses that one share, and it is
        logged)."""
        prefix = device_prefix(record_key)
        keys = challenge_keys(record_key, f"{prefix}:unused", shard_of(events, record_key))
        args = ("" if now_ms is None else now_ms, int(passed), kind, plan, retention_ms, "1")
        status, flat, cooled = self.run(CHALLENGE, keys, args)
        rec = DecisionRecord.parse(flat)
        # (a pass that a ban kept from counting, rec["held"], takes no place either)
        if status == b"ok" and passed and rec is not None and rec["c"] == 1:
            self._count_for_user(user_log_key, f"ch:{rec['id']}", int(rec["ct"]), plan)
        return status.decode(), rec, bool(cooled)

    def _count_for_user(self, user_log: str, event: str, at_ms: int, plan: bytes) -> None:
        self._count_for_users([self._user_write(user_log, event, at_ms, plan)])

    def _user_write(self, user_log: str, event: str, at_ms: int, plan: bytes) -> UserWrite:
        """A share counted on its device's slot, to count on its user's: placed and
        taken in one ``settle.lua`` call, at most once however often it is sent."""
        keys = (user_log, pending_key(user_log), once_key(user_log, event))
        return UserWrite(user_log, [("EVALSHA", SETTLE.sha, len(keys), *keys, event, "1", plan,
                                     f"{at_ms},{at_ms + self.hold_ms}")])

    def _count_for_users(self, writes: list[UserWrite]) -> None:
        """Send ``writes`` now; those that fail are retried by the settle queue."""
        self.settles.send_now(writes)

    def reconcile(self, shares: list[MissedShare]) -> None:
        """Count shares allowed during an outage: on their devices' slots, then
        (those newly counted) on their users' slots."""
        groups: list[tuple[str, list[Command]]] = []
        for share in shares:
            dkeys = device_slot_keys(share.keys)
            dargs = share.args._replace(user_side="split", deadline="")
            groups.append((dkeys.device_state, [("EVALSHA", RECONCILE.sha, len(dkeys), *dkeys, *dargs.wire())]))
        replies = self._scripted(groups)
        users: list[UserWrite] = []
        for share, reply in zip(shares, replies, strict=True):
            if isinstance(reply[0], Exception):
                raise StorageError(f"cannot reconcile shares allowed during the outage: {reply[0]}")
            if reply[0] == b"counted":
                event = "rc:" + share.keys.event.rsplit(":ev:", 1)[1]
                users.append(self._user_write(share.keys.user_log, event, int(share.args.now), share.args.plan))
        if users:
            # counted on their devices: from here on they are retried until the users' slots have them
            self._count_for_users(users)

    def reward_split(self, keys: tuple[str, ...], args: tuple[Any, ...], user_id: str, device_id: str
                     ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """``reward.lua``'s keys and arguments on a cluster: the device's ban and
        graph scores are read from its slot (one round trip) and passed in."""
        version = graph_version(keys[4])
        ban = keys[2]
        commands: list[Command] = [("HMGET", ban, "until", "reason")]
        if version is not None:
            commands.append(("HGET", graph_node_key("device", device_id, version), f"d:{device_id}"))
        replies = self.call(ban, *commands)
        if any(isinstance(r, Exception) for r in replies):
            raise StorageError(f"cannot read the device's side of a reward check: {replies}")
        until, reason = replies[0]
        scores = replies[1] if version is not None else None
        side = orjson.dumps([(until or b"").decode(), (reason or b"").decode(), (scores or b"").decode()])
        user_graph = graph_node_key("user", user_id, version) if version is not None else f"{keys[3]}:unused"
        return (keys[0], keys[1], f"{keys[3]}:unused", keys[3], user_graph), (*args, side)

    def set_ban(self, kind: str, entity_id: str, *, reason: str, actor: str, until_ms: int = 0) -> None:
        """Ban a device, user or ip (as RedisStore.set_ban, in the entity's slot)."""
        key = ban_key(kind, entity_id)
        fields = ["reason", reason, "actor", actor, "at", int(time.time() * 1000), "until", until_ms]
        commands: list[Command] = [("MULTI",), ("DEL", key), ("HSET", key, *fields)]
        if until_ms:
            commands.append(("PEXPIREAT", key, until_ms + 86_400_000))
        replies = self.call(key, *commands, ("EXEC",))
        if any(isinstance(r, Exception) for r in replies):
            raise StorageError(f"cannot write ban: {next(r for r in replies if isinstance(r, Exception))}")

    def clear_ban(self, kind: str, entity_id: str) -> bool:
        key = ban_key(kind, entity_id)
        return bool(self.call(key, ("DEL", key))[0])

    def get_ban(self, kind: str, entity_id: str) -> dict[str, str] | None:
        key = ban_key(kind, entity_id)
        flat = self.call(key, ("HGETALL", key))[0]
        return {bytes(flat[i]).decode(): bytes(flat[i + 1]).decode() for i in range(0, len(flat), 2)} or None
