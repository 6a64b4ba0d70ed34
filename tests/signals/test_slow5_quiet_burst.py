"""lockstep's quiet bursts: a calm coupon's burst of accounts nobody shared to
counts its quiet sharers as partners, from the group's first burst on."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.lockstep import Lockstep
from riskservice.signals.share import Share

MINUTE = 60_000
# Quiet bursts are judged after two days of history.
LATER = 3 * DAY_MS


class Heard:
    """Who received a share (the engine's record, here set by hand)."""

    def __init__(self) -> None:
        self.users: set[str] = set()

    def __call__(self, user: str, now: int) -> bool:
        return user in self.users


def make(config: SignalConfig | None = None) -> tuple[Lockstep, Heard]:
    """A lockstep signal whose history began at 0 (one share of an unrelated coupon)."""
    heard = Heard()
    step = Lockstep(config or SignalConfig(), heard)
    step.share(Share("x0", 0, "someone", "d0", "old", (), True))
    return step, heard


def burst(step: Lockstep, users: list[str], coupon: str, t: int) -> dict[str, int]:
    """``users`` share ``coupon`` a minute apart from ``t``; the last value read of each."""
    values: dict[str, int] = {}
    for i, user in enumerate(users):
        for reading in step.share(Share(f"{coupon}-{i}", t + i * MINUTE, user, f"d-{user}", coupon, ("r",), True)):
            values[reading.entity] = reading.value
    return values


def test_a_quiet_burst_of_eight_flags_each_member() -> None:
    step, _ = make()
    group = [f"g{i}" for i in range(8)]
    values = burst(step, group, "c1", LATER)
    assert all(values[u] == 7 for u in group)
    reading = step.reading("g0", LATER + 10 * MINUTE)
    assert reading.value == 7 and reading.until_ms == LATER + 7 * MINUTE + step.window


def test_seven_is_no_quiet_burst_by_the_share_rule() -> None:
    # (seven unheard and nobody else are quiet by `lockstep_quiet_whole`:
    # test_slow9_quiet_whole.py)
    step, _ = make(replace(SignalConfig(), lockstep_quiet_whole=0))
    values = burst(step, [f"g{i}" for i in range(7)], "c1", LATER)
    assert max(values.values()) == 0


def test_a_member_that_hears_from_someone_is_no_longer_flagged() -> None:
    step, heard = make()
    burst(step, [f"g{i}" for i in range(8)], "c1", LATER)
    heard.users.add("g3")
    assert step.reading("g3", LATER + 20 * MINUTE).value == 0
    assert step.reading("g4", LATER + 20 * MINUTE).value == 7


def test_a_burst_of_heard_users_is_not_quiet() -> None:
    step, heard = make()
    users = [f"u{i}" for i in range(10)]
    heard.users.update(users[:3])  # 7 of 10 unheard: under 80 %
    values = burst(step, users, "c1", LATER)
    assert max(values.values()) == 0


def test_not_judged_before_enough_history() -> None:
    step, _ = make()
    values = burst(step, [f"g{i}" for i in range(8)], "c1", DAY_MS)
    assert max(values.values()) == 0


def test_a_coupon_that_turns_out_a_crowd_withdraws_its_quiet_burst() -> None:
    step, _ = make(replace(SignalConfig(), crowd_sharers=12))
    group = [f"g{i}" for i in range(8)]
    burst(step, group, "c1", LATER)
    # Hours later, real fans make the coupon's day a crowd: the flags go. (A crowd comes over the
    # day, apart from the group's own burst (lockstep_busy_apart): 12 fans, 20 minutes apart.)
    start = LATER + 3 * 60 * MINUTE
    for i in range(12):
        t = start + i * 20 * MINUTE
        step.share(Share(f"fan-{i}", t, f"fan{i}", f"d-fan{i}", "c1", ("r",), True))
        if i < 11:
            assert step.reading("g0", t).value > 0  # (not yet a crowd)
    assert all(step.reading(u, t).value == 0 for u in group)


def test_off_when_zero() -> None:
    step, _ = make(replace(SignalConfig(), lockstep_quiet=0))
    values = burst(step, [f"g{i}" for i in range(8)], "c1", LATER)
    assert max(values.values()) == 0
