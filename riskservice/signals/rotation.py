"""Accounts rotating on a device: distinct users seen on it over days.

The decision rule ``device_many_users`` counts users whose shares were
admitted in the last 24 h; a farm that adds a few accounts a day, or whose
shares are refused, stays under it. This signal counts every attempt, over
``rotation_window_ms`` (30 days), so a device that went through many
accounts stays flagged. Family devices shared by 3-4 accounts stay below
the floor.

**Accounts with friends of their own** (``rotation_own_friends``). A family
phone can carry five accounts (a family of four, and a relative whose only
phone it is: seed 404 at 10 000 users). Each of them is a person with
friends, who share coupons to it from their own phones; a farm's accounts
exist to share, and hear, if at all, from the farm. So an account on the
device does not count when, in the window, it heard from as many accounts
as the device has, or more, each of which

- never shared from the device (a device-mate's shares say nothing), and
- shares from no device that carries the signal's floor of accounts itself
  (four: phones that are themselves suspect, such as a second farm phone),
  and
- has its standing (the fan-out waiver's test, engine.py: not a sink's
  feeder, a fresh burst's, a ring's or a pool's account, and no sharer's
  signal at its shipped threshold).

This is ``device_pool``'s test of an account's own friends (pools.py), on
one phone. What it costs a farm to hide ``k`` of the ``n`` accounts of its
phone: ``n`` distinct accounts on phones of at most three accounts each,
sharing to every one of those ``k`` in the window (``k * n`` shares a
month; the same senders can serve several farm phones), while none of them
loses its standing. Senders who reach the same accounts, which hear from
nobody else, are what ``ring_block``'s closed circles look for: on a crafted
stream (ten accounts on a phone, ten senders on four clean phones, every
sender sharing to every account) the senders were flagged as a ring's
members, so they stopped counting and the phone counted its ten again. A
phone with more accounts than the senders kept per recipient
(``sharers_per_recipient``, 32) can hide none.

The senders, an account's devices and its standing are the engine's
(``sink_feeder``'s senders per recipient, the engine's devices per account,
the waiver's test), passed in by the engine; without them every account
counts, as before. The value is the
number of accounts that count, judged at each share from the device (as
before: a decision reads the value of the device's previous share).

Work per share: nothing more while the device has fewer accounts than the
floor; then, per account with at least ``n`` senders, at most 32 senders,
each judged once per share: its at most ``devices_per_user`` devices (each
device's accounts counted once per share) and its standing (a few board
and published look-ups). No Redis work and no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import FLOORS, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["DeviceRotation"]

# (id, now) -> the ids it is linked to (an account's senders, an account's devices)
Links = Callable[[str, int], list[str]]


class Judged(NamedTuple):
    """What one share's judgement found suspect so far (each judged once)."""

    # device -> whether it carries the floor's accounts
    devices: dict[str, bool]
    # sender -> whether it lost its standing or shares from such a device
    senders: dict[str, bool]


def _nobody(_: str, __: int) -> list[str]:
    """No record: every account counts (the signal as it was)."""
    return []


class DeviceRotation:
    """Distinct users per device in ``rotation_window_ms`` (at most
    ``users_per_device`` kept), less those with friends of their own.

    Parameters
    ----------
    config : SignalConfig
        ``rotation_window_ms``, ``users_per_device``, ``rotation_own_friends``, ``entities``.
    senders : callable, optional
        The accounts that shared to an account in the window (``sink_feeder``'s record).
    devices_of : callable, optional
        An account's recent devices (the engine's record).
    flagged : callable, optional
        Whether an account lost its standing (the engine's test for the fan-out waiver).
    """

    code = "device_rotation"
    per_device = True

    def __init__(self, config: SignalConfig, senders: Links | None = None,
                 devices_of: Links | None = None, flagged: Callable[[str, int], bool] | None = None) -> None:
        self.window = config.rotation_window_ms
        self.own_friends = config.rotation_own_friends
        self.floor = FLOORS[self.code]
        self.senders = senders or _nobody
        self.devices_of = devices_of or _nobody
        self.flagged = flagged or (lambda account, now: False)
        cap = config.users_per_device
        self.devices: Entities[str, Recent[str, None]] = Entities(config.entities, self.window,
                                                                   lambda: Recent(cap, self.window))

    def share(self, share: Share) -> list[Reading]:
        if not share.device:
            return []
        now = share.t_ms
        users = self.devices.touch(share.device, now)
        users.put(share.user, None, now)
        touches = {user: t for user, t, _ in users.entries(now)}
        if not self.own_friends or len(touches) < self.floor:
            # Under the floor nothing is published anyway: no more work for
            # the many phones of one or two accounts.
            counted = list(touches.values())
        else:
            judged = Judged({}, {})
            counted = [t for user, t in touches.items() if not self._has_own_friends(user, touches, now, judged)]
        return [Reading(share.device, len(counted), until_of(counted, self.window, now))]

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []

    def _has_own_friends(self, user: str, device_mates: dict[str, int], now: int,
                         judged: Judged) -> bool:
        """Whether ``user`` heard from as many accounts as its device has
        (``device_mates``), each neither on that device nor suspect
        (:meth:`_suspect`). ``judged`` caches the devices and senders judged."""
        n = len(device_mates)
        senders = self.senders(user, now)
        if len(senders) < n:
            return False
        heard, left = 0, len(senders)
        for sender in senders:
            left -= 1
            if sender in device_mates or self._suspect(sender, now, judged):
                # (a farm's account hears from the farm: stop once it cannot make it)
                if heard + left < n:
                    return False
                continue
            heard += 1
            if heard >= n:
                return True
        return False

    def _suspect(self, account: str, now: int, judged: Judged) -> bool:
        """Whether ``account`` lost its standing or shares from a device that
        carries the floor's accounts (a friend's own phone carries one, a
        family's three or so); judged once per share."""
        hit = judged.senders.get(account)
        if hit is None:
            hit = judged.senders[account] = self._on_busy_device(account, now, judged) or self.flagged(account, now)
        return hit

    def _on_busy_device(self, account: str, now: int, judged: Judged) -> bool:
        for device in self.devices_of(account, now):
            hit = judged.devices.get(device)
            if hit is None:
                users = self.devices.peek(device, now)
                hit = judged.devices[device] = users is not None and len(users.keys(now)) >= self.floor
            if hit:
                return True
        return False
