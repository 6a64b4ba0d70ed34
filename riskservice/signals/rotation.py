"""Accounts rotating on a device: distinct users seen on it over days.

The decision rule ``device_many_users`` counts users whose shares were
admitted in the last 24 h; a farm that adds a few accounts a day, or whose
shares are refused, stays under it. This signal counts every attempt, over a
week, so a device that went through many accounts stays flagged. Family
devices shared by 3-4 accounts stay below the floor.
"""

from __future__ import annotations

from riskservice.signals.base import Reading, until_of
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.share import Outcome, Share

__all__ = ["DeviceRotation"]


class DeviceRotation:
    """Distinct users per device in ``rotation_window_ms`` (at most ``users_per_device`` kept)."""

    code = "device_rotation"
    per_device = True

    def __init__(self, config: SignalConfig) -> None:
        self.window = config.rotation_window_ms
        cap = config.users_per_device
        self.devices: Entities[str, Recent[str, None]] = Entities(config.entities, self.window,
                                                                   lambda: Recent(cap, self.window))

    def share(self, share: Share) -> list[Reading]:
        if not share.device:
            return []
        users = self.devices.touch(share.device, share.t_ms)
        users.put(share.user, None, share.t_ms)
        touches = [t for _, t, _ in users.entries(share.t_ms)]
        return [Reading(share.device, len(touches), until_of(touches, self.window, share.t_ms))]

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]:
        return []
