"""The share-event stream as the signal consumer follows it: the one stream
of a single Redis, or on Redis Cluster one shard per slot on every master.

On a cluster a device's decision script appends to the shard of the
device's slot (``risk:events:{<slot tag>}``, riskservice/limits/keys.py), so
the consumer, whose signals aggregate across devices, follows every shard
that exists:

- **Discovery.** The shards are a fixed set of names (one per slot), so no
  keyspace scan is needed: at start, and then at most once per
  ``discover_s`` (doubling, up to 4 times, while nothing new turns up),
  each master is asked ``EXISTS`` for the shards of its slots that are not
  followed yet (packed into one round trip per master). Once every slot's
  shard exists there is nothing left to ask. A shard found
  after start gets the group at its beginning: it did not exist when the
  state was rebuilt, so all its entries are new.
- **Reading.** Multi-key commands may not cross slots, so a round sends
  one ``XREADGROUP ... COUNT n NOACK STREAMS <shard> >`` per shard it reads,
  packed into one round trip per master (plain bytes and hiredis, not
  redis-py's pipeline, which costs far more per command). Each command
  costs Redis about the same with or without entries, so a round reads the
  *hot* shards (entries in the last ``hot_s``); the others are asked their
  length (``XLEN``, about a third of the cost) once per ``sweep_s`` and read
  when it changed, and all are read once per ``full_s``.
- **Failures.** A master that does not answer is skipped for the round and
  the slot map is read again (at most once a second); its shards are read
  again once their slots have a master. A shard that lost its group (its
  key was deleted) is dropped and found again by discovery.

A single Redis is one "master" with one shard, ``risk:events``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable

import hiredis
import redis

from riskservice.limits.keys import EVENTS, slot_shard
from riskservice.limits.slots import SLOTS
from riskservice.signals.masters import Masters
from riskservice.signals.wire import AWAY, Entry, encode, entries_of, moved, packed, raise_reply

__all__ = ["ShardSet"]

log = logging.getLogger("riskservice.signals")



@functools.cache
def _exists(base: str) -> list[bytes]:
    """``EXISTS <shard>`` of every slot, encoded once (discovery sends thousands)."""
    return [encode(("EXISTS", slot_shard(base, slot))) for slot in range(SLOTS)]


class ShardSet(Masters):
    """The shards of ``base`` that one consumer group follows.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        A single Redis, or a cluster client (its slot map says which master
        serves which shard).
    group, name : str
        The consumer group (one per shard) and this consumer's name in it.
    base : str
        The stream (``risk:events``); on a cluster the base of its shards.
    discover_s : float
        Least time between two discoveries of new shards (cluster only).
    sweep_s, hot_s, full_s : float
        How often shards without recent entries are checked for new ones
        (by length), how long a shard that had entries is read at every
        round, how often every shard is read (cluster only).
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, group: str, name: str, base: str = EVENTS,
                 discover_s: float = 1.0, sweep_s: float = 0.5, hot_s: float = 0.5, full_s: float = 10.0) -> None:
        super().__init__(client)
        self.group, self.name, self.base = group, name, base
        self.discover_s, self.sweep_s, self.hot_s, self.full_s = discover_s, sweep_s, hot_s, full_s
        self._discover_every = discover_s
        self._swept_at = self._full_at = float("-inf")
        self.lengths: dict[str, int] = {}  # shard -> its length at the last sweep
        self.behind: dict[str, tuple[int, int]] = {}  # shard -> last id read, when a whole batch was read
        self.hot: dict[str, float] = {}  # shard -> read at every round until (monotonic s)
        self._commands: dict[tuple[str, int, int], bytes] = {}
        # slot -> shard key (a single Redis: slot -1 -> base)
        self.followed: dict[int, str] = {} if self.cluster else {-1: base}
        self._discovered_at = float("-inf")

    # -- discovery -------------------------------------------------------------

    def discover(self, force: bool = False) -> list[str]:
        """Shards that exist and are not followed yet (cluster; at most once per
        ``discover_s`` unless ``force``); they are followed from now on, and returned.

        Raises
        ------
        redis.RedisError
            Only when ``force`` (start-up needs every master); otherwise a
            master that fails is skipped until the next discovery.
        """
        if not self.cluster:
            return []
        if not force and time.monotonic() - self._discovered_at < self._discover_every:
            return []
        self._discovered_at = time.monotonic()
        found = []
        for master, (node, slots) in self.nodes().items():
            if not force and self.resting(master):
                continue
            missing = [s for s in slots if s not in self.followed]
            try:
                replies = packed(node, [_exists(self.base)[s] for s in missing])
            except AWAY as exc:
                if force:
                    raise
                self.failed(master, exc)
                continue
            for slot, reply in zip(missing, replies, strict=True):
                if reply == 1:
                    self.followed[slot] = slot_shard(self.base, slot)
                    self.hot[self.followed[slot]] = time.monotonic() + self.hot_s
                    found.append(self.followed[slot])
        # Each look that finds nothing new doubles the wait before the next
        # (up to 4 x discover_s): the slots left to check cost one command each.
        self._discover_every = self.discover_s if found else min(self._discover_every * 2, 4 * self.discover_s)
        return found

    def by_master(self) -> dict[str, tuple[redis.Redis, list[str]]]:
        """The followed shards grouped by the master serving them now."""
        out: dict[str, tuple[redis.Redis, list[str]]] = {}
        for master, (node, slots) in self.nodes().items():
            shards = [self.followed[s] for s in slots if s in self.followed]
            if shards:
                out[master] = (node, shards)
        return out

    # -- groups and reading --------------------------------------------------------

    def place_groups(self, positions: dict[str, str], mkstream: bool = False) -> None:
        """Create the group on each shard at ``positions[shard]`` (or move it there if it exists)."""
        for _, (node, shards) in self.by_master().items():
            todo = [s for s in shards if s in positions]
            extra = ("MKSTREAM",) if mkstream else ()
            replies = packed(node, [("XGROUP", "CREATE", s, self.group, positions[s], *extra) for s in todo])
            again = [s for s, r in zip(todo, replies, strict=True)
                     if isinstance(r, hiredis.ReplyError) and "BUSYGROUP" in str(r)]
            errors = [r for r in replies if isinstance(r, hiredis.ReplyError) and "BUSYGROUP" not in str(r)]
            if errors:
                raise_reply(errors[0])
            for r in packed(node, [("XGROUP", "SETID", s, self.group, positions[s]) for s in again]):
                if isinstance(r, hiredis.ReplyError):
                    raise_reply(r)

    def join(self, shards: Iterable[str]) -> None:
        """Give newly found shards the group at their beginning (kept where it is if it exists)."""
        positions = dict.fromkeys(shards, "0")
        for master, (node, owned) in self.by_master().items():
            todo = [s for s in owned if s in positions]
            if self.resting(master):
                continue  # (dropped at their first read, and found again)
            try:
                # BUSYGROUP: keep it. A shard left without its group is dropped
                # at its first read (NOGROUP) and found again.
                packed(node, [("XGROUP", "CREATE", s, self.group, "0") for s in todo])
            except AWAY as exc:
                self.failed(master, exc)

    def read(self, count: int, block_ms: int | None = None) -> tuple[list[Entry], tuple[int, int] | None]:
        """New entries of the followed shards on every master that answers, and
        the watermark: the smallest last id read from a shard that returned a
        whole ``count`` (more is waiting there; such shards are read again at
        the next round), or None when no shard has more waiting.

        On a cluster a round reads the *hot* shards (those that had entries in
        the last ``hot_s``). Once per ``sweep_s`` it also asks every other
        shard its length (``XLEN``, a third of the cost of a read that finds
        nothing) and reads those whose length changed; once per ``full_s``
        it reads every shard (a length can come back to the same value when
        trimming removes as many entries as were added: such an entry waits
        for this). A single Redis's one stream is read at every round.
        """
        entries: list[Entry] = []
        self.down.clear()
        now = time.monotonic()
        sweep, full = now - self._swept_at >= self.sweep_s, now - self._full_at >= self.full_s
        if sweep:
            self._swept_at = now
        if full:
            self._full_at = now
        groups = self.by_master()
        # One shard in all (a single Redis): the read may block until something comes.
        block = block_ms if block_ms and sum(len(s) for _, s in groups.values()) == 1 else 0
        unread: set[str] = set()  # followed shards of masters that did not answer this round
        for master, (node, followed) in groups.items():
            if self.resting(master):
                unread.update(followed)
                continue
            if not self.cluster or full:
                shards = followed
            else:
                # Hot shards, and those that returned a whole batch last time (more is waiting).
                shards = [s for s in followed if self.hot.get(s, 0.0) > now or s in self.behind]
                if sweep:
                    try:
                        shards += self._changed(node, [s for s in followed
                                                       if self.hot.get(s, 0.0) <= now and s not in self.behind])
                    except AWAY as exc:
                        self.failed(master, exc)
                        unread.update(followed)
                        continue
            if not shards:
                continue
            try:
                replies = packed(node, [self._xreadgroup(s, count, block) for s in shards])
            except AWAY as exc:
                self.failed(master, exc)
                unread.update(followed)
                continue
            self.answered(master)
            read_at = time.monotonic()
            for shard, reply in zip(shards, replies, strict=True):
                if isinstance(reply, hiredis.ReplyError):
                    self.behind.pop(shard, None)
                    self._read_error(master, shard, reply)
                    continue
                # RESP2: [[stream, entries]]; RESP3 (a client that said HELLO 3): {stream: entries}
                raw = (next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]) if reply else []
                got = entries_of(shard, raw)
                if got:
                    entries += got
                    self.hot[shard] = read_at + self.hot_s
                if len(raw) >= count and got:
                    self.behind[shard] = got[-1].order
                else:
                    self.behind.pop(shard, None)
        # Entries past the last one read of a shard that has more waiting are
        # held back until it is read further; a master that is away does not
        # hold the others back (its entries come late instead).
        waiting = [order for shard, order in self.behind.items() if shard not in unread]
        return entries, min(waiting) if waiting else None

    def _changed(self, node: redis.Redis, shards: list[str]) -> list[str]:
        """Those of ``shards`` whose length is not the one seen last time (unknown counts as changed)."""
        lengths = packed(node, [self._xlen(s) for s in shards])
        changed = [s for s, n in zip(shards, lengths, strict=True) if n != self.lengths.get(s)]
        self.lengths.update((s, n) for s, n in zip(shards, lengths, strict=True) if isinstance(n, int))
        return changed

    def _xlen(self, shard: str) -> bytes:
        command = self._commands.get((shard, -1, 0))
        if command is None:
            command = self._commands[(shard, -1, 0)] = encode(("XLEN", shard))
        return command

    def _xreadgroup(self, shard: str, count: int, block_ms: int) -> bytes:
        """``XREADGROUP GROUP <group> <name> COUNT n [BLOCK ms] NOACK STREAMS <shard> >``, encoded once."""
        key = (shard, count, block_ms)
        command = self._commands.get(key)
        if command is None:
            block = ("BLOCK", block_ms) if block_ms else ()
            # NOACK: nothing is kept pending, so nothing needs an XACK (half the
            # commands of a round). The pending list would never be re-read
            # anyway: a restart rebuilds the state from the shards themselves.
            command = encode(("XREADGROUP", "GROUP", self.group, self.name, "COUNT", count, *block, "NOACK",
                              "STREAMS", shard, ">"))
            self._commands[key] = command
        return command

    def _read_error(self, master: str, shard: str, error: Exception) -> None:
        text = str(error)
        if moved(error):
            self.failed(master, error)
        elif text.startswith("NOGROUP"):
            # The shard's key was deleted (or re-created): discovery finds it again.
            self.followed = {slot: s for slot, s in self.followed.items() if s != shard}
            self._discovered_at = float("-inf")
            if not self.cluster:
                self.place_groups({self.base: "0"}, mkstream=True)
                self.followed = {-1: self.base}
        else:
            raise redis.ResponseError(text)
