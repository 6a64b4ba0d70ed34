"""lockstep's quiet bursts of the first two days of history: kept, and judged
once two days of history are seen, by who was sent a share by then."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.lockstep import Lockstep
from riskservice.signals.share import Share
from tests.signals.test_slow5_quiet_burst import MINUTE, burst, make

# Past the two days of history quiet bursts wait for.
LATER = 2 * DAY_MS + 1


def later_share(step: Lockstep, user: str = "someone", coupon: str = "other", t: int = LATER) -> dict[str, int]:
    """One share after two days of history; the values it read."""
    return {r.entity: r.value for r in step.share(Share("late", t, user, "d-late", coupon, ("r",), True))}


def test_an_early_quiet_burst_is_judged_after_two_days() -> None:
    step, _ = make()
    group = [f"g{i}" for i in range(8)]
    assert max(burst(step, group, "c1", DAY_MS).values()) == 0  # not judged yet
    values = later_share(step)
    assert all(values[u] == 7 for u in group)
    # its evidence leaves the window with the burst, not with the judging
    reading = step.reading("g0", LATER)
    assert reading.value == 7 and reading.until_ms == DAY_MS + 7 * MINUTE + step.window


def test_members_heard_from_by_then_do_not_count() -> None:
    step, heard = make()
    group = [f"g{i}" for i in range(10)]
    burst(step, group, "c1", DAY_MS)
    heard.users.update(group[:3])  # 7 of 10 unheard after two days: no quiet burst
    assert max(later_share(step).values(), default=0) == 0
    assert step.reading("g5", LATER).value == 0


def test_an_early_burst_on_a_coupon_that_turned_out_a_crowd_does_not_count() -> None:
    step, _ = make()
    group = [f"g{i}" for i in range(8)]
    burst(step, group, "c1", DAY_MS)
    fans = [f"fan{i}" for i in range(40)]
    burst(step, fans, "c1", DAY_MS + 30 * MINUTE)  # a crowd on c1 within the day
    later_share(step)
    assert step.reading("g0", LATER).value == 0


def test_judged_once() -> None:
    step, _ = make()
    burst(step, [f"g{i}" for i in range(8)], "c1", DAY_MS)
    later_share(step)
    assert step.early is None
    assert later_share(step, "someone-else", "third", LATER + MINUTE) == {"someone-else": 0}


def test_off() -> None:
    step, _ = make(replace(SignalConfig(), lockstep_quiet_early=False))
    group = [f"g{i}" for i in range(8)]
    burst(step, group, "c1", DAY_MS)
    assert max(later_share(step).values(), default=0) == 0
