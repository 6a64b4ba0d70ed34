"""A launch's cascade: per coupon, its sharers whose recipient passed it on.

A real coupon launch's first sharers look like a group's burst (fresh,
unheard accounts sharing one coupon within minutes), but a real sharer's
friends pass the coupon on. ``lockstep`` (quiet bursts) and ``fresh_bursts``
(fresh bursts) each note their last burst of a coupon and, when one of its
sharers turns out a *passer*, judge that burst again without the passers.
This holds what both keep for that; each judges by its own rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from riskservice.signals.counters import Entities, Recent

__all__ = ["Passers"]


class Passers:
    """Per coupon, its passers and its last noted burst.

    Parameters
    ----------
    coupons : int
        The most coupons followed (least recently active dropped first).
    per_coupon : int
        The most passers kept per coupon.
    keep_ms : int
        How long a passer and a noted burst are kept.
    """

    def __init__(self, coupons: int, per_coupon: int, keep_ms: int) -> None:
        self.passed: Entities[str, Recent[str, bool]] = Entities(
            coupons, keep_ms, lambda: Recent(per_coupon, keep_ms))
        # coupon -> its last noted burst: (its members, its number of sharers)
        self.noted: Recent[str, tuple[tuple[str, ...], int]] = Recent(coupons, keep_ms)

    def mark(self, coupon: str, passer: str, now: int) -> None:
        """``passer``'s recipient passed ``coupon`` on."""
        self.passed.touch(coupon, now).put(passer, True, now)

    def unpassed(self, coupon: str, users: Iterable[str], now: int) -> list[str]:
        """The accounts of ``users`` that are no passers of ``coupon``."""
        passers = self.passed.peek(coupon, now)
        if passers is None:
            return list(users)
        return [u for u in users if not passers.get(u, now)]

    def note(self, coupon: str, members: Iterable[str], sharers: int, now: int) -> None:
        """``coupon``'s burst: the members it flags, of ``sharers`` sharers."""
        self.noted.put(coupon, (tuple(members), sharers), now)

    def burst_of(self, coupon: str, passer: str, now: int) -> tuple[tuple[str, ...], int] | None:
        """``coupon``'s noted burst, when ``passer`` is one of its members."""
        held = self.noted.get(coupon, now)
        return held if held is not None and passer in held[0] else None

    def forget(self, coupon: str) -> None:
        """``coupon``'s noted burst was judged again and undone."""
        self.noted.pop(coupon)
