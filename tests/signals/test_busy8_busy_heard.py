"""lockstep's busy coupons count only sharers that were shared to: a group
cannot make its own coupon a crowd, real fans (who hear from friends) can."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from tests.signals.test_slow5_quiet_burst import LATER, MINUTE, burst, make

HOUR = 60 * MINUTE
# A small crowd keeps the tests short: 8 group members and 4 others reach it.
CROWD = replace(SignalConfig(), crowd_sharers=12)
GROUP = [f"g{i}" for i in range(8)]
FANS = [f"fan{i}" for i in range(4)]


def test_a_group_with_unheard_others_does_not_make_its_coupon_busy() -> None:
    step, _ = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    # 12 sharers in the day, but only the 4 others could be anyone's fans,
    # and they were sent nothing either: the coupon stays calm.
    burst(step, FANS, "c1", LATER + 3 * HOUR)
    assert all(step.reading(u, LATER + 4 * HOUR).value == 7 for u in GROUP)


def test_real_fans_who_heard_from_friends_make_it_busy() -> None:
    step, heard = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    fans = [f"fan{i}" for i in range(12)]
    heard.users.update(fans)
    burst(step, fans, "c1", LATER + 3 * HOUR)
    # Twelve heard sharers in the day: a crowd, the quiet burst is withdrawn.
    assert all(step.reading(u, LATER + 4 * HOUR).value == 0 for u in GROUP)


def test_a_group_plus_heard_fans_under_the_crowd_stays_calm() -> None:
    step, heard = make(CROWD)
    burst(step, GROUP, "c1", LATER)
    heard.users.update(FANS)
    burst(step, FANS, "c1", LATER + 3 * HOUR)
    # 4 heard of 12: the group made the day's crowd, not the fans.
    assert all(step.reading(u, LATER + 4 * HOUR).value == 7 for u in GROUP)


def test_everybody_counts_in_the_first_days_of_history() -> None:
    # Before `lockstep_quiet_after_ms` nobody is heard yet: every sharer
    # counts, so a crowd then is still one (its early burst is never judged quiet).
    step, _ = make(CROWD)
    # Twelve unheard sharers ten minutes apart: never a crowd within an hour.
    for i in range(12):
        burst(step, [f"u{i}"], "c1", DAY_MS + i * 10 * MINUTE)
    assert step.crowded.get("c1", DAY_MS + 2 * HOUR) == 1  # BUSY


def test_off_restores_every_sharer_counting() -> None:
    step, _ = make(replace(CROWD, lockstep_busy_heard=False))
    burst(step, GROUP, "c1", LATER)
    values = burst(step, FANS, "c1", LATER + 3 * HOUR)
    assert all(values[u] == 0 for u in GROUP)
