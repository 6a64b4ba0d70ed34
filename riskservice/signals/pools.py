"""Accounts rotating over a pool of shared devices.

A reward ring that rotates its accounts over a pool of phones (each account
sharing from a few phones of the pool, each phone used by a few accounts)
keeps every phone under ``device_rotation`` (a family phone is used by three
or four accounts, so that rule fires from five), and spreads each account's
standing over its phones. What gives the pool away is that the phones are
linked: the accounts of one phone also share from other phones, used by
still other accounts. A family's phone is a closed set: its members' other
phones are their own.

A family phone can still look like a small pool: two members who also use
their own phones, each of those phones shared with one other person (a
housemate), make three shared devices and six accounts. But only those two
members link the phones; in a pool, accounts move from phone to phone, and
many of them link two phones or more. So a pool also needs ``pool_linked``
(three) accounts that shared from two of its devices or more.

At each share from a device ``D`` the pool of ``D`` is judged: its
*devices*, the devices of ``D``'s accounts (at most ``devices_per_user``
each, the engine's record), and its *accounts*, those of its devices (at
most ``users_per_device`` each, ``device_rotation``'s record): one round;
each further round, up to ``pool_rounds``, adds the devices of the accounts
the last round found, and their accounts. A ring's young pool is loosely
linked (each account has shared from one or two of its phones so far), and
one round from the sharing phone saw only part of it: the ring's first
days passed (most of what rotating rings got through on the design
workloads). A family's phone reaches its members' own phones in one round
and their housemates' in two, which are closed too: nothing new links
(pool_linked). The devices
used by two accounts or more are its *shared* devices, and the accounts
that shared from two of its devices or more its *linked* accounts. A pool
with ``pool_shared`` shared devices or more, ``pool_linked`` linked
accounts or more and accounts at the rule's floor (``FLOORS``) or more is
published on the board: each of its devices (kind ``p``) and accounts (kind
``q``), with the number of its accounts (at most ``pool_cap``), for
``window_ms`` from the last time it was seen in one. The ``device_pool``
rule judges a share from a flagged device (an account's first share from a
phone of the pool is caught) or by a flagged account (from whichever device).

Work per share: at most ``users_per_device`` x ``devices_per_user`` device
lookups (64 x 4) in the first round and ``pool_cap`` x ``devices_per_user``
in the next (each account's devices are read once), and at most
``pool_cap`` accounts collected (and, for a
pool passing the other tests, their devices read again: 64 x 4); no new
per-entity state (it reads the engine's devices per account and
``device_rotation``'s accounts per device), no Redis work beyond the board's
writes, none in the decision.
"""

from __future__ import annotations

from collections.abc import Callable

from riskservice.signals.board import Board, BoardWrite
from riskservice.signals.catalog import FLOORS, SignalConfig
from riskservice.signals.share import Share

__all__ = ["DevicePools"]

# (id, now) -> the ids it is linked to (a device's accounts, an account's devices)
Links = Callable[[str, int], list[str]]


class DevicePools:
    """Pools of accounts and shared devices, published on a :class:`Board`.

    Parameters
    ----------
    config : SignalConfig
        ``pool_shared``, ``pool_linked``, ``pool_own_friends``, ``pool_cap``, ``window_ms``.
    board : Board
        Where pools are published.
    users_of, devices_of : callable
        A device's recent accounts; an account's recent devices.
    senders : callable
        The accounts that shared to an account in the window (``sink_feeder``'s record).
    """

    def __init__(self, config: SignalConfig, board: Board, users_of: Links, devices_of: Links,
                 senders: Links) -> None:
        self.c, self.board = config, board
        self.users_of, self.devices_of = users_of, devices_of
        self.senders = senders

    def pool(self, device: str, now: int) -> tuple[set[str], set[str], int]:
        """The accounts and devices of ``device``'s pool, and how many of its
        devices are shared (accounts stop growing at ``pool_cap``)."""
        accounts: set[str] = set()
        devices: set[str] = set()
        shared = 0
        frontier = list(self.users_of(device, now))
        for _ in range(max(1, self.c.pool_rounds)):
            reached: list[str] = []
            for user in frontier:
                for d in self.devices_of(user, now):
                    if d in devices:
                        continue
                    devices.add(d)
                    users = self.users_of(d, now)
                    shared += len(users) >= 2
                    for u in users:
                        if len(accounts) >= self.c.pool_cap:
                            break
                        if u not in accounts:
                            accounts.add(u)
                            reached.append(u)
            frontier = reached
        return accounts, devices, shared

    def linked(self, accounts: set[str], devices: set[str], now: int) -> int:
        """How many of ``accounts`` shared from two of ``devices`` or more
        (with ``pool_own_friends``, and heard from fewer accounts outside the
        pool than the pool has)."""
        return sum(1 for user in accounts
                   if len(devices.intersection(self.devices_of(user, now))) >= 2
                   and not self._own_friends(user, accounts, now))

    def _own_friends(self, user: str, accounts: set[str], now: int) -> bool:
        """Whether ``user`` heard from as many accounts outside the pool as the
        pool has, or more: a family member who also shares from the family's
        phone hears from its own friends, a rotating ring's account from the
        ring (the recipients' record keeps 32 sharers each)."""
        if not self.c.pool_own_friends:
            return False
        return sum(1 for p in self.senders(user, now) if p not in accounts) >= len(accounts)

    def share(self, share: Share) -> list[BoardWrite]:
        # (after the engine recorded the share's device and account)
        if not share.device:
            return []
        now, c = share.t_ms, self.c
        accounts, devices, shared = self.pool(share.device, now)
        if shared < c.pool_shared or len(accounts) < FLOORS["device_pool"]:
            return []
        if self.linked(accounts, devices, now) < c.pool_linked:
            return []
        value, until = min(len(accounts), c.pool_cap), now + c.window_ms
        flags: list[tuple[str, str, int, int]] = []
        for kind, ids in (("p", devices), ("q", accounts)):
            for entity in sorted(ids):
                held = self.board.get(kind, entity, now)
                # Re-published when the pool grew or half the window has gone
                # (fewer writes and versions for the workers to read).
                if held is None or held[0] < value or held[1] - now <= c.window_ms // 2:
                    flags.append((kind, entity, max(value, held[0] if held else 0), until))
        # One version for the whole pool; a pool's account has no standing.
        writes = self.board.set_many(flags, now)
        for kind, entity, _, _ in flags:
            if kind == "q":
                writes += self.board.clear("w", entity, now)
        return writes
