"""What every signal gives the engine: readings of entities it observed."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from riskservice.signals.share import Outcome, Share

__all__ = ["Reading", "Signal", "claims_on_average", "until_of"]


class Reading(NamedTuple):
    """A signal's value for one entity (a device id or a user id), and the
    event time (ms) until which it holds unless new evidence arrives: when
    its oldest evidence leaves the window."""

    entity: str
    value: int
    until_ms: int


class Signal(Protocol):
    """One signal: its rule code, whether its entity is the device (else the
    sharer), and its state updates."""

    code: str
    per_device: bool

    def share(self, share: Share) -> list[Reading]: ...

    def outcome(self, share: Share, outcome: Outcome) -> list[Reading]: ...


def until_of(touches: list[int], window_ms: int, now: int) -> int:
    """When the oldest of ``touches`` leaves a window of ``window_ms`` (``now``
    plus the window when there is none).

    >>> until_of([30, 10, 20], 100, 50)
    110
    """
    return (min(touches) if touches else now) + window_ms


def claims_on_average(credits: list[float], share: float) -> bool:
    """Whether ``credits`` (each claimed / delivered of a report) average
    ``share`` or more, exactly: a sum of thirds and halves that averages one
    half sums to 1.4999999999999998 for three in floating point, and a sink claiming half
    of what it got must not be judged light for it.

    >>> claims_on_average([0.5, 2 / 3, 1 / 3], 0.5), sum([0.5, 2 / 3, 1 / 3]) >= 0.5 * 3
    (True, False)
    >>> claims_on_average([0.5, 0.4], 0.5)
    False
    """
    return bool(credits) and sum(credits) >= share * len(credits) - 1e-9
