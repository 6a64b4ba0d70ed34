"""Decisions on Redis Cluster, where a device's keys and a user's keys live
on different masters (work in progress: the decision path's core; the
service does not use it yet, see docs/architecture.md).

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

The caller waits for two round trips: settles are sent by a background
thread, batched into one pipeline per master, not waited for. The user's
window is exact as long as each settle arrives within the hold; a settle
that arrives later (the process stalled for seconds) still takes its share
into the log if the place is there, but while the place had lapsed another
share may have taken it: at most one extra share per lapsed place.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, cast

import orjson
import redis

from riskservice.errors import StorageError
from riskservice.limits.contract import DecideArgs
from riskservice.limits.keys import DecisionKeys, device_prefix
from riskservice.limits.records import DecisionRecord
from riskservice.limits.slots import key_slot, slot_tag
from riskservice.limits.store import DECIDE, OUTCOME, Script

# Settles sent in one pipeline at most.
SETTLE_BATCH = 500

__all__ = ["HOLD_MS", "ClusterStore", "cluster_decision_id", "device_slot_keys", "events_shard", "pointer_key"]

log = logging.getLogger("riskservice.cluster")

RESERVE, SETTLE = Script("reserve"), Script("settle")
# How long a place is held without its settle: far longer than a settle takes
# (milliseconds, batched), far shorter than any window.
HOLD_MS = 5000


def shard_tag(key: str) -> str:
    """The hash tag of the per-slot shards (events, review queue) that ``key``'s slot writes."""
    return slot_tag(key_slot(key))


def events_shard(key: str) -> str:
    """The share-event stream shard of ``key``'s slot."""
    return f"risk:events:{{{shard_tag(key)}}}"


def cluster_decision_id(device_state_key: str, decision_id: str) -> str:
    """A decision id that names its device's slot (``<tag>-<id>``), so the
    pointer from it to the record can live in that slot.

    >>> cluster_decision_id("risk:{d:dev-1}:state", "abc").endswith("-abc")
    True
    """
    return f"{shard_tag(device_state_key)}-{decision_id}"


def pointer_key(decision_id: str) -> str:
    """Where a cluster decision id points to its record: in the slot its tag names."""
    tag = decision_id.split("-", 1)[0]
    return f"risk:{{{tag}}}:dec:{decision_id}"


def device_slot_keys(keys: DecisionKeys, decision_id: str) -> DecisionKeys:
    """The decision script's keys with every key in the device's slot: the
    user's keys are judged by reserve.lua and never touched here, the event
    stream and review queue are the shards of the device's slot, the pointer
    is named by the cluster decision id."""
    device = device_prefix(keys.event)
    shard = shard_tag(keys.device_state)
    unused = f"{device}:unused"  # never read or written when the user side is judged elsewhere
    return keys._replace(user_log=unused, user_ban=unused, ip_ban=unused, graph=unused,
                         events=f"risk:events:{{{shard}}}", queue=f"risk:review:queue:{{{shard}}}",
                         pointer=pointer_key(decision_id))


class ClusterStore:
    """The decision path's store on a Redis Cluster client.

    Parameters
    ----------
    client : redis.RedisCluster
        Routes each script to the master of its keys' slot.
    hold_ms : int
        How long a reserved place waits for its settle.
    """

    def __init__(self, client: redis.RedisCluster, hold_ms: int = HOLD_MS,
                 retention_ms: int = 30 * 86_400_000) -> None:
        self.client = client
        self.hold_ms = hold_ms
        self.retention_ms = retention_ms
        self._settles: queue.Queue[tuple[tuple[str, str], tuple[str, str, bytes]]] = queue.Queue()
        self._settler = threading.Thread(target=self._settle_forever, name="risk-settle", daemon=True)
        self._settler.start()

    def _settle_forever(self) -> None:
        """Send settles as they come, all that are waiting in one pipeline (one
        round trip per master), so a settle lags its decision by milliseconds."""
        while True:
            batch = [self._settles.get()]
            while len(batch) < SETTLE_BATCH:
                try:
                    batch.append(self._settles.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send_settles(batch)
            except Exception as exc:
                # Those places expire after their hold instead (see the module docstring).
                log.warning("settles failed", extra={"error": str(exc), "count": len(batch)})
            finally:
                for _ in batch:
                    self._settles.task_done()

    def _send_settles(self, batch: list[tuple[tuple[str, str], tuple[str, str, bytes]]]) -> None:
        """One pipeline per master (redis-py's cluster pipeline refuses scripts)."""
        by_node: dict[str, list[tuple[tuple[str, str], tuple[str, str, bytes]]]] = {}
        nodes = {}
        for keys, args in batch:
            node = self.client.nodes_manager.get_node_from_slot(key_slot(keys[0]))
            nodes[node.name] = node
            by_node.setdefault(node.name, []).append((keys, args))
        failed: list[Exception] = []
        for name, settles in by_node.items():
            conn = self.client.get_redis_connection(nodes[name])
            for attempt in range(2):
                pipe = conn.pipeline(transaction=False)
                for keys, args in settles:
                    pipe.evalsha(SETTLE.sha, len(keys), *keys, *args)
                results = pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                    conn.script_load(SETTLE.source)
                    continue
                failed += [r for r in results if isinstance(r, Exception)]
                break
        if failed:
            raise StorageError(f"{len(failed)} of {len(batch)} settles failed: {failed[0]}")

    def flush(self) -> None:
        """Wait until every settle sent so far has been written (tests, shutdown)."""
        self._settles.join()

    def run(self, script: Script, keys: tuple[str, ...] | list[str], args: tuple[Any, ...]) -> Any:
        try:
            try:
                return self.client.evalsha(script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                self.client.script_load(script.source)  # on every master
                return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.RedisError as exc:
            raise StorageError(f"redis script failed: {exc}") from exc

    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        """Reserve on the user's slot, decide on the device's, settle on the user's."""
        event = keys.event.rsplit(":ev:", 1)[1]
        user_keys = (keys.user_log, keys.user_ban, keys.user_log.removesuffix(":log") + ":pend")
        status, user_side, reserved = self.run(RESERVE, user_keys,
                                               (args.now, args.deadline, event, args.plan, self.hold_ms, args.arms))
        if status == b"late":
            raise StorageError("the decision reached Redis after its deadline; nothing was recorded")
        decision_id = cluster_decision_id(keys.device_state, args.decision_id)
        status, flat = self.run(DECIDE, device_slot_keys(keys, decision_id),
                                args._replace(user_side=user_side, decision_id=decision_id))
        if status == b"late":
            rec = None
        elif status == b"new":
            rec = DecisionRecord.from_reply("new", flat, {"id": decision_id, "pv": args.policy_version,
                                                          "fs": args.static_findings})
        else:
            rec = DecisionRecord.from_reply(status.decode(), flat)
        if reserved == 1:
            # This call's own place: taken only by the call that counted the share
            # (a replay's place is released; the original's settle takes its own).
            counted = rec is not None and rec.status == "new" and rec.consumed
            self._settles.put(((user_keys[0], user_keys[2]), (event, "1" if counted else "0", args.plan)))
        if rec is None:
            raise StorageError("the decision reached Redis after its deadline; nothing was recorded")
        return rec

    def resolve(self, decision_id: str) -> dict[str, Any] | None:
        """Where a decision's record is: ``{k: record key, m: merchant, u: user log key}``."""
        if "-" not in decision_id:
            return None
        try:
            raw = self.client.get(pointer_key(decision_id))
        except redis.RedisError as exc:
            raise StorageError(f"cannot read decision pointer: {exc}") from exc
        return None if raw is None else cast(dict[str, Any], orjson.loads(cast(bytes, raw)))

    def outcome(self, record_key: str, *, delivered: int, opened: int, claimed: int, window_ms: int, cap: int,
                now_ms: int | None) -> tuple[str, dict[str, Any] | None]:
        """Record a share's outcome (``lua/outcome.lua``) in its device's slot; returns (status, record)."""
        keys = (record_key, f"{device_prefix(record_key)}:outcomes", events_shard(record_key))
        args = ("" if now_ms is None else now_ms, delivered, opened, claimed, window_ms, cap, self.retention_ms)
        status, flat = self.run(OUTCOME, keys, args)
        return status.decode(), DecisionRecord.parse(flat)
