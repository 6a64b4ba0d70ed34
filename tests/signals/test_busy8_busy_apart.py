"""lockstep's busy coupons count their sharers apart from the day's largest
burst: a group cannot make its own coupon a crowd, a day's fans can."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.lockstep import Lockstep
from tests.signals.test_slow5_quiet_burst import LATER, MINUTE, burst, make

HOUR = 60 * MINUTE
# A small crowd keeps the tests short.
CROWD = replace(SignalConfig(), crowd_sharers=12)
GROUP = [f"g{i}" for i in range(8)]


def spread(step: Lockstep, users: list[str], coupon: str, t: int) -> None:
    """``users`` share ``coupon`` twenty minutes apart from ``t``: no burst."""
    for i, user in enumerate(users):
        burst(step, [user], coupon, t + i * 20 * MINUTE)


def test_a_group_and_a_few_others_do_not_make_its_coupon_busy() -> None:
    step, _ = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    # 12 sharers in the day, 8 of them in the group's burst: calm.
    spread(step, [f"fan{i}" for i in range(4)], "c1", LATER + 3 * HOUR)
    assert all(step.reading(u, LATER + 5 * HOUR).value == 7 for u in GROUP)


def test_a_crowd_over_the_day_apart_from_the_burst_makes_it_busy() -> None:
    step, _ = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    spread(step, [f"fan{i}" for i in range(12)], "c1", LATER + 3 * HOUR)
    # Twelve sharers besides the burst: a crowd, the quiet burst is withdrawn.
    assert all(step.reading(u, LATER + 8 * HOUR).value == 0 for u in GROUP)


def test_eleven_besides_the_burst_are_no_crowd() -> None:
    step, _ = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    spread(step, [f"fan{i}" for i in range(11)], "c1", LATER + 3 * HOUR)
    assert all(step.reading(u, LATER + 8 * HOUR).value == 7 for u in GROUP)


def test_off_counts_every_sharer() -> None:
    step, _ = make(replace(CROWD, lockstep_busy_apart=False))
    burst(step, GROUP, "c1", LATER)
    spread(step, [f"fan{i}" for i in range(4)], "c1", LATER + 3 * HOUR)
    assert all(step.reading(u, LATER + 5 * HOUR).value == 0 for u in GROUP)
