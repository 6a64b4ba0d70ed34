"""The signal engine: share-stream entries in, writes of observed values out.

Pure Python and deterministic (time is the entries' own), so the consumer
and the backtest run the same code. Each signal (one module each) keeps its
bounded state and returns readings; the engine publishes a reading only from
the signal's floor up, and only when it changed, as a field of the device's
``:sig`` hash (``risk:{d:<device>}:sig``):

- a device signal under its field name (``r``);
- a sharer's signal under ``<field>|<user>``, on each of the few devices the
  user recently shared from (and on a new device at its first share), so a
  decision reads one key in its device's slot.

A value is written as ``<value>@<until ms>``: the decision script ignores it
after ``until``, when the signal's oldest evidence has left its window and
the value may have fallen.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from riskservice.limits.contract import SIGNAL_FIELDS, signal_field
from riskservice.limits.keys import signals_key
from riskservice.signals.base import Reading, Signal
from riskservice.signals.blocks import RingBlocks
from riskservice.signals.board import BOARD_KEY, Board, BoardWrite
from riskservice.signals.catalog import FLOORS, STANDING_LOST, SignalConfig
from riskservice.signals.counters import Entities, Recent
from riskservice.signals.dead import DeadRecipients
from riskservice.signals.fresh_bursts import FreshBursts
from riskservice.signals.lockstep import Lockstep
from riskservice.signals.pools import DevicePools
from riskservice.signals.recipients import SinkRecipients
from riskservice.signals.repeat import CouponRepeat
from riskservice.signals.rotation import DeviceRotation
from riskservice.signals.share import Outcome, Share, parse_entry
from riskservice.signals.sinks import SinkFeeder
from riskservice.signals.waiver import FanOutWaiver

__all__ = ["SignalEngine", "Write"]


class Write(NamedTuple):
    """One hash field to set (``value``) or delete (``value`` None)."""

    key: str
    field: str
    value: str | None


class SignalEngine:
    """Every signal, fed in event order.

    Parameters
    ----------
    config : SignalConfig
        Windows and bounds.
    floors : dict, optional
        Smallest published value per signal (default :data:`FLOORS`).
    """

    def __init__(self, config: SignalConfig | None = None, floors: dict[str, int] | None = None) -> None:
        self.config = config = config or SignalConfig()
        self.floors = floors or FLOORS
        # Evidence about accounts other than the sharer goes on the board
        # (board.py), which the workers copy into memory.
        self.board = Board(config.board_cap)
        board = self.board
        feeder = SinkFeeder(config, lambda r, now: board.get("r", r, now) is not None)
        # (device_rotation's friends of an account's own: its senders, their
        # devices and standing; rotation.py)
        rotation = DeviceRotation(config, feeder.senders, lambda u, now: _keys(self.devices_of, u, now),
                                  self._flagged)
        self.sinks = SinkRecipients(config, self.board)
        received = self.sinks.received
        self.lockstep = Lockstep(config, lambda user, now: received.get(user, now) is not None)
        self.signals: list[Signal] = [rotation, self.lockstep, feeder, DeadRecipients(config, feeder.senders),
                                      CouponRepeat(config)]
        assert [s.code for s in self.signals] == list(SIGNAL_FIELDS)
        self.blocks = RingBlocks(config, self.board, feeder)
        self.waiver = FanOutWaiver(config, self.board, self._flagged)
        self.bursts = FreshBursts(config, self.board, self.sinks.fresh)
        self.sinks.crowded = self.bursts.crowded
        feeder.crowded = self.bursts.crowded
        # Shares waiting for their outcome reports.
        self.shares: Recent[str, Share] = Recent(config.shares, config.share_memory_ms)
        self.devices_of: Entities[str, Recent[str, None]] = Entities(
            config.entities, config.window_ms, lambda: Recent(config.devices_per_user, config.window_ms))
        # (code, entity) -> published "value@until"
        self.published: Recent[tuple[str, str], str] = Recent(config.entities, config.window_ms)
        # device -> users whose values are on its hash, least recent first
        self.flagged_on: Entities[str, OrderedDict[str, None]] = Entities(config.entities, config.window_ms,
                                                                           OrderedDict)
        self.pools = DevicePools(config, self.board, lambda d, now: _keys(rotation.devices, d, now),
                                 lambda u, now: _keys(self.devices_of, u, now), feeder.senders)
        self.entries = 0

    def observe(self, fields: dict[str, str]) -> list[Write]:
        """Feed one stream entry (decoded fields); the writes it causes."""
        self.entries += 1
        item = parse_entry(fields)
        if isinstance(item, Share):
            return self.share(item)
        if isinstance(item, Outcome):
            return self.outcome(item)
        return []

    def share(self, share: Share) -> list[Write]:
        """A decided share."""
        self.shares.put(share.decision_id, share, share.t_ms)
        writes = self._new_device(share) if share.device else []
        for signal in self.signals:
            writes += self._publish(signal, signal.share(share), share.t_ms)
        # (sinks first: it notes the sharer's first share, which freshness reads)
        board = self.sinks.share(share)
        board += self.bursts.share(share)
        board += self.blocks.share(share)
        board += self.pools.share(share)
        if share.allowed:
            # An account that receives shares is not (or no longer) fresh: a
            # real user caught in a group's burst loses the flag; and its
            # single meetings with a group's core no longer count (lockstep.py).
            for r in share.recipients:
                board += self.board.clear("g", r, share.t_ms)
                if self.published.get(("lockstep", r), share.t_ms) is not None:
                    writes += self._publish(self.lockstep, [self.lockstep.reading(r, share.t_ms)], share.t_ms)
        return writes + self._on_board(board)

    def outcome(self, outcome: Outcome) -> list[Write]:
        """An outcome report of a share seen before (others are ignored)."""
        share = self.shares.get(outcome.decision_id, outcome.t_ms)
        if share is None:
            return []
        writes: list[Write] = []
        for signal in self.signals:
            writes += self._publish(signal, signal.outcome(share, outcome), outcome.t_ms)
        board = self.sinks.outcome(share, outcome) + self.blocks.outcome(share, outcome)
        return writes + self._on_board(board + self.waiver.outcome(share, outcome))

    def _flagged(self, user: str, now: int) -> bool:
        """Whether ``user`` fed a sink, joined a fresh burst or a ring's block,
        or a device pool, or has a sharer's signal published at its :data:`STANDING_LOST` level."""
        if any(self.board.get(kind, user, now) is not None for kind in ("s", "g", "m", "q")):
            return True
        for signal in self.signals:
            text = None if signal.per_device else self.published.get((signal.code, user), now)
            if text is not None and int(text.partition("@")[0]) >= STANDING_LOST[signal.code]:
                return True
        return False

    @staticmethod
    def _on_board(writes: list[BoardWrite]) -> list[Write]:
        return [Write(BOARD_KEY, field, value) for field, value in writes]

    def _new_device(self, share: Share) -> list[Write]:
        """A user's first share from a device: its published values go there too."""
        devices = self.devices_of.touch(share.user, share.t_ms)
        known = share.device in devices.keys(share.t_ms)
        devices.put(share.device, None, share.t_ms)
        if known:
            return []
        writes = []
        for signal in self.signals:
            if not signal.per_device:
                value = self.published.get((signal.code, share.user), share.t_ms)
                if value is not None:
                    writes += self._set(share.device, share.user, signal_field(signal.code, share.user), value,
                                        share.t_ms)
        return writes

    def _publish(self, signal: Signal, readings: list[Reading], now: int) -> list[Write]:
        writes: list[Write] = []
        for entity, value, until in readings:
            key = (signal.code, entity)
            before = self.published.get(key, now)
            text = f"{value}@{until}" if value >= self.floors[signal.code] else None
            if text == before or (text is None and before is None):
                continue
            if text is None:
                self.published.pop(key)
            else:
                self.published.put(key, text, now)
                if not signal.per_device and value >= STANDING_LOST[signal.code]:
                    # a sharer flagged at an enforced level loses its fan-out waiver
                    writes += self._on_board(self.board.clear("w", entity, now))
            if signal.per_device:
                writes.append(Write(signals_key(entity), signal_field(signal.code, ""), text))
                continue
            field = signal_field(signal.code, entity)
            devices = self.devices_of.peek(entity, now)
            for device in devices.keys(now) if devices else ():
                writes += (self._set(device, entity, field, text, now) if text is not None
                           else [Write(signals_key(device), field, None)])
        return writes

    def _set(self, device: str, user: str, field: str, value: str, now: int) -> list[Write]:
        """Set a user's field on a device's hash, dropping the least recent
        user's fields when the device carries too many users."""
        writes = [Write(signals_key(device), field, value)]
        users = self.flagged_on.touch(device, now)
        users[user] = None
        users.move_to_end(user)
        while len(users) > self.config.flagged_users_per_device:
            old, _ = users.popitem(last=False)
            writes += [Write(signals_key(device), signal_field(code, old), None)
                       for code, (_, per_user) in SIGNAL_FIELDS.items() if per_user]
        return writes


def _keys(entities: Entities[str, Recent[str, None]], key: str, now: int) -> list[str]:
    """The live keys of ``key``'s record (none when it has none)."""
    got = entities.peek(key, now)
    return got.keys(now) if got is not None else []
