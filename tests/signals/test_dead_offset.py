"""dead_recipients: each account that shared to the sharer in the window
offsets one of its dead recipients (``dead_offset``): a real user whose
friends ignore its coupons is heard from by friends; a sprayer is not."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.dead import DeadRecipients
from riskservice.signals.engine import SignalEngine
from riskservice.signals.share import Outcome, Share

T0 = 1_760_000_000_000
MONTH = 30 * DAY_MS
FRIENDS = ("a", "b", "c", "d")


def spray(engine: SignalEngine, sharer: str, first: int, times: int = 3) -> None:
    """``sharer`` sends ``times`` coupons to :data:`FRIENDS`, a minute apart, nobody claiming."""
    for k in range(times):
        n, t = first + k, T0 + (first + k) * 60_000
        engine.share(Share(f"x{n}", t, sharer, f"dev-{sharer}", f"c{n}", FRIENDS, True))
        engine.outcome(Outcome(f"x{n}", t + 10, len(FRIENDS), 0))


def value(engine: SignalEngine, sharer: str, at: int) -> str | None:
    return engine.published.get(("dead_recipients", sharer), T0 + at * 60_000)


def test_a_sharer_nobody_shared_to_keeps_every_dead_recipient() -> None:
    engine = SignalEngine()
    spray(engine, "s", 0)
    assert value(engine, "s", 3) == f"4@{T0 + 2 * 60_000 + 10 + MONTH}"


def test_each_account_that_shared_to_the_sharer_offsets_one() -> None:
    engine = SignalEngine()
    # two friends shared a coupon to "s" (neither claimed nor was claimed from)
    for n, friend in enumerate(("p", "q")):
        engine.share(Share(f"f{n}", T0 - DAY_MS + n, friend, f"dev-{friend}", "cf", ("s",), True))
    spray(engine, "s", 0)
    assert value(engine, "s", 3) == f"2@{T0 + 2 * 60_000 + 10 + MONTH}"
    # a third: one dead recipient left, under the floor, so nothing is published
    engine.share(Share("f2", T0 + 3 * 60_000, "r", "dev-r", "cf", ("s",), True))
    spray(engine, "s", 3, times=1)
    assert value(engine, "s", 4) is None


def test_senders_older_than_the_window_offset_nothing() -> None:
    engine = SignalEngine()
    for n, friend in enumerate(("p", "q", "r", "t")):
        engine.share(Share(f"f{n}", T0 - MONTH - DAY_MS + n, friend, f"dev-{friend}", "cf", ("s",), True))
    spray(engine, "s", 0)
    assert value(engine, "s", 3) == f"4@{T0 + 2 * 60_000 + 10 + MONTH}"


def test_the_offset_can_be_turned_off() -> None:
    senders = ["p", "q", "r"]
    counted = DeadRecipients(replace(SignalConfig(), dead_offset=False), lambda user, now: senders)
    offset = DeadRecipients(SignalConfig(), lambda user, now: senders)
    for dead in (counted, offset):
        for n in range(3):
            share = Share(f"x{n}", T0 + n * 1000, "s", "ds", f"c{n}", FRIENDS, True)
            dead.share(share)
            last = dead.outcome(share, Outcome(f"x{n}", T0 + n * 1000, len(FRIENDS), 0))
        assert last[-1].value == (4 if dead is counted else 1)
