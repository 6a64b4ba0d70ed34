"""Decisions on Redis Cluster, where a device's keys and a user's keys live
on different masters (``RISK_REDIS_CLUSTER=1``; docs/architecture.md).

Atomicity: each step is one script on one slot.

1. ``reserve.lua`` on the user's slot judges the user's ban and daily window,
   counting admitted shares and places other shares hold, and holds a place
   for this share when the user side allows it;
2. ``decide.lua`` on the device's slot judges everything else, with the user
   side's findings, and records the decision;
3. ``settle.lua`` on the user's slot takes the place into the user's log if
   the share was counted, or releases it.

So the user's window never admits more than its limit, however many devices
share at once, and the device's window is exact as on one Redis. A place
whose settle never arrives (the app died between the steps) expires after
``hold_ms``: it holds quota that long at most, and a share allowed in that
gap is then missing from the user's window.

The caller waits for two round trips: the first reads the user's slot
(``reserve.lua``, and the user's graph scores) and the ip's ban at once, the
second runs ``decide.lua`` on the device's slot; each script is sent as the
native module's command (``RISK.RESERVE``, ``RISK.DECIDE``, ``RISK.SETTLE``)
where its master has the module; settles are sent by a
background thread, batched into one pipeline per master, not waited for. The user's
window is exact as long as each settle arrives within the hold; a settle
that arrives later (the process stalled for seconds) still takes its share
into the log if the place is there, but while the place had lapsed another
share may have taken it: at most one extra share per lapsed place.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

import redis

from riskservice.errors import StorageError
from riskservice.limits.cluster_io import RESERVE, SETTLE, Command
from riskservice.limits.cluster_lifecycle import HOLD_MS, ClusterLifecycle, graph_version
from riskservice.limits.contract import DecideArgs, Plan, encode_findings, rule_id, user_side
from riskservice.limits.keys import (
    DecisionKeys,
    device_slot_keys,
    events_shard,
    graph_node_key,
    pending_key,
)
from riskservice.limits.records import DecisionRecord, RecordLocation, find_record
from riskservice.limits.scripts import DECIDE
from riskservice.limits.settles import UserWrite

__all__ = ["HOLD_MS", "ClusterStore", "device_slot_keys", "events_shard"]

log = logging.getLogger("riskservice.cluster")

IP_BLOCKLIST = rule_id("ip_blocklist")


@functools.lru_cache(maxsize=256)
def _plan(packed: bytes) -> Plan:
    return Plan.unpack(packed)


def ip_finding(ban: list[Any], plan: bytes, arms: str, now_ms: int) -> list[Any] | None:
    """The ``ip_blocklist`` finding from the ip's ban (``HMGET until reason``), as decide.lua makes it."""
    rule = _plan(plan).rules["ip_blocklist"]
    until, reason = ban[0], ban[1]
    if not rule.enabled or (until is None and reason is None):
        return None
    untl = int(until or 0)
    if untl and untl <= now_ms:
        return None
    shadow = int(arms[IP_BLOCKLIST - 1]) if arms else int(rule.shadow)
    return ["ip_blocklist", rule.severity, shadow, rule.challenge, (reason or b"").decode(), None, None,
            untl - now_ms if untl else 0]


class ClusterStore(ClusterLifecycle):
    """The decision path's store on a Redis Cluster (the interface of
    :class:`riskservice.limits.store.RedisStore`).

    Parameters
    ----------
    client : redis.RedisCluster
        From :func:`riskservice.limits.topology.connect_cluster`.
    hold_ms : int
        How long a reserved place waits for its settle.
    """

    def __init__(self, client: redis.RedisCluster, hold_ms: int = HOLD_MS,
                 retention_ms: int = 30 * 86_400_000, **io: Any) -> None:
        super().__init__(client, hold_ms=hold_ms, retention_ms=retention_ms, **io)
        try:
            # Now, outside any request's budget: loading them on the first
            # decisions (7 scripts on every master) would degrade those.
            self._load_scripts()
        except redis.RedisError as exc:
            log.warning("cannot load the scripts at start; they are loaded when missing",
                        extra={"error": str(exc)})

    def flush(self) -> None:
        """Wait until every settle sent so far has been written or given up (tests, shutdown)."""
        self.settles.flush()

    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        """Reserve on the user's slot (and read the ip's ban) in one round trip,
        decide on the device's slot in a second; settle on the user's later."""
        if args.deadline == "" and self.budget_ms is not None:
            args = args._replace(deadline=self.deadline_ms())
        event = keys.event.rsplit(":ev:", 1)[1]
        user_keys = (keys.user_log, keys.user_ban, pending_key(keys.user_log))
        version = graph_version(keys.graph)
        first: list[tuple[str, list[Command]]] = [(keys.user_log, [
            ("EVALSHA", RESERVE.sha, 3, *user_keys, args.now, args.deadline, event, args.plan, self.hold_ms,
             args.arms)])]
        if version is not None:
            first[0][1].append(("HGET", graph_node_key("user", args.user_id, version), f"u:{args.user_id}"))
        if self.wait_replicas:
            # the place held for this share outlives a failover of the user's master
            first[0][1].append(("WAIT", self.wait_replicas, self.wait_ms))
        has_ip = not keys.ip_ban.endswith("{ip:}:ban")
        if has_ip:
            first.append((keys.ip_ban, [("HMGET", keys.ip_ban, "until", "reason")]))
        replies = self._scripted(first)
        reserve_reply = replies[0][0]
        if isinstance(reserve_reply, Exception):
            raise StorageError(f"redis script failed: {reserve_reply}")
        status, user_findings, reserved = reserve_reply
        if status == b"late":
            raise StorageError("the decision reached Redis after its deadline; nothing was recorded")
        if has_ip and not isinstance(replies[1][0], Exception):
            now = int(args.now) if args.now != "" else self.server_now_ms()
            found = ip_finding(replies[1][0], args.plan, args.arms, now)
            if found is not None:
                user_findings += encode_findings([found])
        user_graph = replies[0][1] if version is not None else None
        if self.wait_replicas:
            self.note_wait(replies[0][-1])
        dkeys = device_slot_keys(keys, args.device_id, version)
        dargs = args._replace(user_side=user_side(user_findings),
                              user_graph=user_graph if isinstance(user_graph, bytes) else "")
        static = dargs.record_static().pack()
        # (_scripted sends each script as the native module's command where the master has it)
        second: list[Command] = [("EVALSHA", DECIDE.sha, len(dkeys), *dkeys, *dargs.wire(static))]
        if self.wait_replicas:
            second.append(("WAIT", self.wait_replicas, self.wait_ms))
        rec: DecisionRecord | None = None
        try:
            decided = self._scripted([(dkeys.device_state, second)])[0]
            if isinstance(decided[0], Exception):
                raise StorageError(f"redis script failed: {decided[0]}")
            if self.wait_replicas:
                self.note_wait(decided[1])
            if isinstance(decided[0], bytes):  # a new decision: the script's part of the record
                rec = DecisionRecord.from_reply("new", decided[0], static)
            elif decided[0][0] != b"late":
                rec = DecisionRecord.from_reply(decided[0][0].decode(), decided[0][1])
        finally:
            if reserved == 1:
                # This call's own place: taken only by the call that counted the share
                # (a replay's place is released; the original's settle takes its own).
                counted = rec is not None and rec.status == "new" and rec.consumed
                self.settles.put(UserWrite(user_keys[0], [("EVALSHA", SETTLE.sha, 2, user_keys[0], user_keys[2],
                                                            event, "1" if counted else "0", args.plan)]))
        if rec is None:
            raise StorageError("the decision reached Redis after its deadline; nothing was recorded")
        return rec

    def resolve(self, decision_id: str) -> RecordLocation | None:
        """Where a decision's record is, from the key its id names: one ``GET``
        on that key's master; None for an id that names no record of its own."""
        return find_record(decision_id, self._get_string)

    def _get_string(self, key: str) -> bytes | None:
        """``GET key`` on its master; None when missing or of another type (a record of an older release)."""
        raw = self.call(key, ("GET", key))[0]
        if isinstance(raw, redis.ResponseError) and "WRONGTYPE" in str(raw):
            return None
        if isinstance(raw, Exception):
            raise StorageError(f"cannot read the decision record: {raw}")
        return cast(bytes | None, raw)
