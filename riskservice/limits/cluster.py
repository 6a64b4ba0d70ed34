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
thread, not waited for.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import redis

from riskservice.errors import StorageError
from riskservice.limits.contract import DecideArgs
from riskservice.limits.keys import DecisionKeys, device_prefix
from riskservice.limits.records import DecisionRecord
from riskservice.limits.slots import key_slot, slot_tag
from riskservice.limits.store import DECIDE, Script

__all__ = ["HOLD_MS", "ClusterStore", "device_slot_keys"]

log = logging.getLogger("riskservice.cluster")

RESERVE, SETTLE = Script("reserve"), Script("settle")
# How long a place is held without its settle: a few budgets, far below any window.
HOLD_MS = 2000


def device_slot_keys(keys: DecisionKeys) -> DecisionKeys:
    """The decision script's keys with every key in the device's slot: the
    user's keys are judged by reserve.lua and never touched here, the event
    stream and review queue are the shards of the device's slot."""
    device = device_prefix(keys.event)
    shard = slot_tag(key_slot(keys.device_state))
    unused = f"{device}:unused"  # never read or written when the user side is judged elsewhere
    return keys._replace(user_log=unused, user_ban=unused, ip_ban=unused, graph=unused,
                         events=f"risk:events:{{{shard}}}", queue=f"risk:review:queue:{{{shard}}}",
                         pointer=f"{device}:dec:{keys.pointer.rsplit('{dec:', 1)[-1].rstrip('}')}")


class ClusterStore:
    """The decision path's store on a Redis Cluster client.

    Parameters
    ----------
    client : redis.RedisCluster
        Routes each script to the master of its keys' slot.
    hold_ms : int
        How long a reserved place waits for its settle.
    """

    def __init__(self, client: redis.RedisCluster, hold_ms: int = HOLD_MS) -> None:
        self.client = client
        self.hold_ms = hold_ms
        self._settles: queue.Queue[tuple[tuple[str, str], tuple[str, str, bytes]]] = queue.Queue()
        self._settler = threading.Thread(target=self._settle_forever, name="risk-settle", daemon=True)
        self._settler.start()

    def _settle_forever(self) -> None:
        while True:
            keys, args = self._settles.get()
            try:
                self.run(SETTLE, keys, args)
            except StorageError as exc:
                # The place expires after its hold instead (see the module docstring).
                log.warning("settle failed", extra={"error": str(exc)})
            finally:
                self._settles.task_done()

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
        status, flat = self.run(DECIDE, device_slot_keys(keys), args._replace(user_side=user_side))
        if status == b"late":
            rec = None
        elif status == b"new":
            rec = DecisionRecord.from_reply("new", flat, {"id": args.decision_id, "pv": args.policy_version,
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
