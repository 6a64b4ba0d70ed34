"""lockstep's quiet bursts and a launch's cascade (``lockstep_passed_on``):
a quiet sharer whose recipient passes the burst's coupon on counts as heard
when the burst is judged, and the burst is judged again then."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.lockstep import Lockstep
from riskservice.signals.share import Share
from tests.signals.test_slow5_quiet_burst import LATER, MINUTE, Heard, make

HOUR = 60 * MINUTE


def burst(step: Lockstep, users: list[str], coupon: str, t: int) -> dict[str, int]:
    """``users`` share ``coupon`` a minute apart from ``t``, each to its own
    friend ``f-<user>``; the last value read of each."""
    values: dict[str, int] = {}
    for i, user in enumerate(users):
        share = Share(f"{coupon}-{user}", t + i * MINUTE, user, f"d-{user}", coupon, (f"f-{user}",), True)
        for reading in step.share(share):
            values[reading.entity] = reading.value
    return values


def share(step: Lockstep, user: str, coupon: str, t: int, to: tuple[str, ...] = ("x",)) -> dict[str, int]:
    """One share; the values it read."""
    readings = step.share(Share(f"{user}-{coupon}-{t}", t, user, f"d-{user}", coupon, to, True))
    return {r.entity: r.value for r in readings}


def seven_then_passed_on(step: Lockstep, heard: Heard, coupon: str) -> tuple[list[str], dict[str, int]]:
    """Seven seeds burst with ``c1`` at ``LATER``; an hour later ``f-s2``, s2's friend (heard:
    in ``heard.users``), shares ``coupon``. The seeds, and the values that share read."""
    seeds = [f"s{i}" for i in range(7)]
    burst(step, seeds, "c1", LATER)
    heard.users.add("f-s2")
    return seeds, share(step, "f-s2", coupon, LATER + HOUR)


def test_a_launch_whose_seed_is_passed_on_is_no_quiet_burst() -> None:
    step, heard = make()
    seeds = [f"s{i}" for i in range(7)]
    assert all(v == 6 for v in burst(step, seeds, "c1", LATER).values())
    # A friend of s2 shares the coupon an hour later: it heard of it from s2.
    heard.users.add("f-s2")
    values = share(step, "f-s2", "c1", LATER + HOUR)
    assert all(values[s] == 0 for s in seeds)
    assert all(step.reading(s, LATER + 2 * HOUR).value == 0 for s in seeds)


def test_a_large_group_keeps_its_flags_when_one_target_passes_it_on() -> None:
    step, heard = make()
    group = [f"g{i}" for i in range(12)]
    burst(step, group, "c1", LATER)
    heard.users.add("f-g5")
    share(step, "f-g5", "c1", LATER + HOUR)
    # Eleven of twelve are still unheard: a quiet burst, the passer's record too.
    assert all(step.reading(g, LATER + 2 * HOUR).value == 11 for g in group)


def test_enough_passers_break_a_large_burst() -> None:
    step, heard = make()
    group = [f"g{i}" for i in range(10)]
    burst(step, group, "c1", LATER)
    for i in range(3):  # 7 of 10 unpassed: under eight and under 80 %
        heard.users.add(f"f-g{i}")
        share(step, f"f-g{i}", "c1", LATER + HOUR + i * MINUTE)
    assert all(step.reading(g, LATER + 2 * HOUR).value == 0 for g in group)


def test_one_who_shared_the_coupon_before_did_not_hear_it_from_the_sharer() -> None:
    step, heard = make()
    share(step, "f-s2", "c1", LATER - HOUR)  # shared c1 before s2 sent it
    seeds, _ = seven_then_passed_on(step, heard, "c1")
    assert all(step.reading(s, LATER + 2 * HOUR).value == 6 for s in seeds)


def test_passing_on_another_coupon_clears_nothing() -> None:
    step, heard = make()
    seeds, _ = seven_then_passed_on(step, heard, "c2")
    assert all(step.reading(s, LATER + 2 * HOUR).value == 6 for s in seeds)


def test_an_early_burst_passed_on_before_it_is_judged_is_not_quiet() -> None:
    step, heard = make()
    seeds = [f"s{i}" for i in range(7)]
    burst(step, seeds, "c1", DAY_MS)  # in the first two days: judged later
    share(step, "f-s2", "c1", DAY_MS + HOUR)
    heard.users.add("f-s2")
    values = share(step, "late", "c9", LATER)  # the first share after two days judges it
    assert all(values.get(s, 0) == 0 for s in seeds)
    assert all(step.reading(s, LATER).value == 0 for s in seeds)


def test_off_keeps_the_burst_quiet() -> None:
    step, heard = make(replace(SignalConfig(), lockstep_passed_on=False))
    seeds, _ = seven_then_passed_on(step, heard, "c1")
    assert all(step.reading(s, LATER + 2 * HOUR).value == 6 for s in seeds)
