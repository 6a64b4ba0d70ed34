"""coupon_repeat's crews (accounts pushing one coupon together count a
sitting more) and its sittings' length cap."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.repeat import CouponRepeat
from riskservice.signals.share import Share

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_700_000_000_000


def push(signal: CouponRepeat, user: str, sittings: int, coupon: str = "c1", start: int = T0) -> dict[str, int]:
    """``user`` shares ``coupon`` once per sitting, two hours apart; the values read at its last share."""
    values: dict[str, int] = {}
    for n in range(sittings):
        t = start + n * 2 * HOUR
        share = Share(f"{user}-{coupon}-{n}", t, user, f"d-{user}", coupon, ("r",), True)
        values = {r.entity: r.value for r in signal.share(share)}
    return values


def test_alone_a_pusher_counts_its_sittings() -> None:
    signal = CouponRepeat(SignalConfig())
    assert push(signal, "a", 3) == {"a": 3}


def test_a_crew_member_counts_one_more_from_its_second_sitting() -> None:
    signal = CouponRepeat(SignalConfig())
    push(signal, "a", 3)
    push(signal, "b", 3)
    assert push(signal, "c", 1, start=T0 + 10 * MINUTE) == {"c": 1}
    assert push(signal, "d", 2, start=T0 + 10 * MINUTE)["d"] == 3
    assert push(signal, "e", 3, start=T0 + 10 * MINUTE)["e"] == 4


def test_the_crew_is_re_read_when_it_grows() -> None:
    signal = CouponRepeat(SignalConfig())
    push(signal, "a", 3)
    push(signal, "b", 3)
    # c's third sitting makes a crew of three: a and b now have two others each
    values = push(signal, "c", 3, start=T0 + 10 * MINUTE)
    assert values == {"a": 4, "b": 4, "c": 4}


def test_one_other_pusher_is_no_crew() -> None:
    signal = CouponRepeat(SignalConfig())
    push(signal, "a", 3)
    values = push(signal, "b", 3, start=T0 + 10 * MINUTE)
    assert values["b"] == 3 and values.get("a", 3) == 3


def test_no_crew_on_a_crowd_coupon() -> None:
    signal = CouponRepeat(SignalConfig())
    push(signal, "a", 3)
    push(signal, "b", 3)
    for i in range(40):  # a popular coupon: 40 distinct sharers in a day
        push(signal, f"fan{i}", 1, start=T0 + 5 * HOUR + i * MINUTE)
    assert push(signal, "e", 3, start=T0 + 10 * MINUTE)["e"] == 3


def test_crew_off() -> None:
    signal = CouponRepeat(replace(SignalConfig(), repeat_crew=0))
    push(signal, "a", 3)
    push(signal, "b", 3)
    assert push(signal, "e", 3, start=T0 + 10 * MINUTE) == {"e": 3}


def test_a_sitting_lasts_at_most_its_span() -> None:
    # shares 35 minutes apart for three and a half hours: one sitting without
    # the cap; with a cap of an hour, a new one at 70, 140 and 210 minutes
    times = [0, 35, 70, 105, 140, 175, 210]
    values = []
    for span in (0, HOUR):
        signal = CouponRepeat(replace(SignalConfig(), repeat_sitting_ms=span, repeat_crew=0))
        readings = [signal.share(Share(f"x{n}", T0 + t * MINUTE, "p", "d", "c1", (), True))
                    for n, t in enumerate(times)]
        values.append(readings[-1][0].value)
    assert values == [1, 4]


def test_a_group_poster_is_no_crew_member() -> None:
    signal = CouponRepeat(SignalConfig())
    push(signal, "a", 3)
    push(signal, "b", 3)
    group = tuple(f"m{i}" for i in range(12))
    signal.share(Share("post", T0 - HOUR, "admin", "d-admin", "weekly", group, True))
    assert push(signal, "admin", 3, start=T0 + 10 * MINUTE)["admin"] == 3
    # and it does not make a crew for others either
    signal.share(Share("post2", T0 - HOUR, "admin2", "d-admin2", "weekly", group, True))
    push(signal, "admin2", 3, start=T0 + 20 * MINUTE)
    fresh = CouponRepeat(SignalConfig())
    fresh.share(Share("post", T0 - HOUR, "admin", "d-admin", "weekly", group, True))
    push(fresh, "admin", 3)
    push(fresh, "b", 3)
    assert push(fresh, "e", 3, start=T0 + 10 * MINUTE)["e"] == 3
