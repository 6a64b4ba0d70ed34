"""A fresh burst's member is flagged from its next share after the burst
(``fresh_burst_next_share``, fresh_bursts.py): that share goes through, the
ones after it are judged. Until then the member is held, and a hold is
withdrawn as a flag would be."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine
from riskservice.signals.share import Share

T0 = 1_760_000_000_000
DAY3 = 3 * DAY_MS
HOUR = 3_600_000
MONTH = 30 * DAY_MS
MEMBERS = [f"m{i}" for i in range(4)]
FLAG = (4, T0 + DAY3 + 180_000 + MONTH)  # the burst's value and until (from its fourth share)


class Stream:
    """Shares into one engine, with numbered decision ids."""

    def __init__(self, config: SignalConfig | None = None) -> None:
        self.engine = SignalEngine(config)
        self.n = 0
        self.share(0, "old", ("x",), coupon="c0")  # the consumer's history begins

    def share(self, t: int, user: str, recipients: tuple[str, ...], coupon: str = "launch") -> None:
        self.n += 1
        self.engine.share(Share(f"x{self.n}", T0 + t, user, f"dev-{user}", coupon, recipients, True))

    def flag(self, user: str, t: int) -> tuple[int, int] | None:
        return self.engine.board.get("g", user, T0 + t)


def burst(s: Stream) -> None:
    """Four fresh accounts share the launch coupon a minute apart, each to its own friend."""
    for i, u in enumerate(MEMBERS):
        s.share(DAY3 + i * 60_000, u, (f"friend-{u}",))


def test_a_member_is_flagged_at_its_next_share_with_the_bursts_value_and_until() -> None:
    s = Stream()
    burst(s)
    assert [s.flag(u, DAY3 + HOUR) for u in MEMBERS] == [None] * 4
    # m0 shares the launch coupon again, to another chat: that share was
    # decided without a flag; from the next one on, it is judged.
    s.share(DAY3 + 2 * HOUR, "m0", ("another-friend",))
    assert s.flag("m0", DAY3 + 2 * HOUR) == FLAG
    # m1's next share is another coupon, days later: the same.
    s.share(DAY3 + 5 * DAY_MS, "m1", ("y",), coupon="next")
    assert s.flag("m1", DAY3 + 5 * DAY_MS) == FLAG
    assert s.flag("m2", DAY3 + 5 * DAY_MS) is None


def test_a_held_member_that_receives_a_share_is_never_flagged() -> None:
    s = Stream()
    burst(s)
    s.share(DAY3 + HOUR, "old", ("m0",), coupon="c9")
    s.share(DAY3 + 2 * HOUR, "m0", ("y",), coupon="c9")
    assert s.flag("m0", DAY3 + 2 * HOUR) is None


def test_a_held_member_whose_friend_passes_the_coupon_on_is_never_flagged() -> None:
    s = Stream(replace(SignalConfig(), fresh_burst_passed_on=False))
    burst(s)
    s.share(DAY3 + HOUR, "friend-m0", ("y",))  # m0's friend passes the launch on
    for u in MEMBERS:
        s.share(DAY3 + 2 * HOUR, u, ("z",), coupon="next")
    assert [s.flag(u, DAY3 + 2 * HOUR) is not None for u in MEMBERS] == [False, True, True, True]


def test_a_crowd_withdraws_the_holds_it_gave() -> None:
    s = Stream()
    burst(s)
    for i in range(40):  # the launch turns out a crowd (40 sharers in a day)
        s.share(DAY3 + HOUR + i * 1000, f"fan-{i}", (f"f-{i}",))
    for u in MEMBERS:
        s.share(DAY3 + 2 * HOUR, u, ("z",), coupon="next")
    assert [s.flag(u, DAY3 + 2 * HOUR) for u in MEMBERS] == [None] * 4


def test_a_member_on_the_board_is_raised_at_once_by_a_larger_burst() -> None:
    s = Stream()
    burst(s)
    s.share(DAY3 + HOUR, "m0", ("y",), coupon="next")
    assert s.flag("m0", DAY3 + HOUR) == FLAG
    # m0 and four more fresh accounts burst on a second coupon: five.
    t = DAY3 + 2 * HOUR
    for i, u in enumerate(["m0", "n1", "n2", "n3", "n4"]):
        s.share(t + i * 60_000, u, (f"friend2-{u}",), coupon="second")
    assert s.flag("m0", t + 240_000) == (5, T0 + t + 240_000 + MONTH)
    assert s.flag("n1", t + 240_000) is None  # held


def test_a_hold_ends_with_the_flag_it_would_have_been() -> None:
    s = Stream()
    burst(s)
    s.share(DAY3 + 180_000 + MONTH + 1, "m0", ("y",), coupon="next")
    assert s.flag("m0", DAY3 + 180_000 + MONTH + 1) is None


def test_off_flags_at_the_burst() -> None:
    s = Stream(replace(SignalConfig(), fresh_burst_next_share=False))
    burst(s)
    assert [s.flag(u, DAY3 + HOUR) for u in MEMBERS] == [FLAG] * 4
