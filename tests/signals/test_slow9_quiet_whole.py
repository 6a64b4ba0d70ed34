"""lockstep's whole quiet bursts: a calm coupon's burst of seven sharers,
none of whom anybody shared to, is quiet too (``lockstep_quiet_whole``)."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.share import Share
from tests.signals.test_slow5_quiet_burst import LATER, MINUTE, burst, make


def test_seven_unheard_and_nobody_else_flag_each_member() -> None:
    step, _ = make()
    group = [f"g{i}" for i in range(7)]
    values = burst(step, group, "c1", LATER)
    assert all(values[u] == 6 for u in group)
    assert step.reading("g0", LATER + 10 * MINUTE).value == 6


def test_seven_unheard_with_one_heard_sharer_are_not_quiet() -> None:
    step, heard = make()
    users = [f"u{i}" for i in range(8)]
    heard.users.add("u0")  # the first sharer: 7 of 8 unheard, not eight and not all of them
    values = burst(step, users, "c1", LATER)
    assert max(values.values()) == 0


def test_six_unheard_are_not_quiet() -> None:
    step, _ = make()
    values = burst(step, [f"g{i}" for i in range(6)], "c1", LATER)
    assert max(values.values()) == 0


def test_eight_of_ten_unheard_still_quiet() -> None:
    step, heard = make()
    users = [f"u{i}" for i in range(10)]
    heard.users.update(users[:2])
    values = burst(step, users, "c1", LATER)
    assert all(values[u] == 7 for u in users[2:])


def test_a_member_that_hears_from_someone_is_no_longer_flagged() -> None:
    step, heard = make()
    burst(step, [f"g{i}" for i in range(7)], "c1", LATER)
    heard.users.add("g3")
    assert step.reading("g3", LATER + 20 * MINUTE).value == 0
    assert step.reading("g4", LATER + 20 * MINUTE).value == 6


def test_an_early_whole_burst_is_judged_after_two_days() -> None:
    step, _ = make()
    group = [f"g{i}" for i in range(7)]
    assert max(burst(step, group, "c1", DAY_MS).values()) == 0
    # the first share after two days of history judges the kept burst
    step.share(Share("late", 2 * DAY_MS + MINUTE, "other", "d-other", "c9", ("r",), True))
    assert step.reading("g0", 2 * DAY_MS + 2 * MINUTE).value == 6


def test_off_when_zero() -> None:
    step, _ = make(replace(SignalConfig(), lockstep_quiet_whole=0))
    values = burst(step, [f"g{i}" for i in range(7)], "c1", LATER)
    assert max(values.values()) == 0
