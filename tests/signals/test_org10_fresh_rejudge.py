"""A fresh burst judged again when a fresh sharer's recipient passes its
coupon on (``fresh_burst_passed_on``, fresh_bursts.py): when the other fresh
sharers are too few for a fresh burst, every flag it gave goes."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine
from riskservice.signals.share import Share

T0 = 1_760_000_000_000
DAY3 = 3 * DAY_MS
HOUR = 3_600_000


class Stream:
    """Shares into one engine, with numbered decision ids."""

    def __init__(self, config: SignalConfig | None = None) -> None:
        # (flags published at the burst: fresh_burst_next_share, which holds
        # them to the member's next share, is tested in test_fresh14_next_share.py)
        self.engine = SignalEngine(replace(config or SignalConfig(), fresh_burst_next_share=False))
        self.n = 0
        self.share(0, "old", ("x",), coupon="c0")  # the consumer's history begins

    def share(self, t: int, user: str, recipients: tuple[str, ...], coupon: str = "launch") -> None:
        self.n += 1
        self.engine.share(Share(f"x{self.n}", T0 + t, user, f"dev-{user}", coupon, recipients, True))

    def flagged(self, users: list[str], t: int) -> list[str]:
        return [u for u in users if self.engine.board.get("g", u, T0 + t) is not None]


def burst(s: Stream, users: list[str]) -> None:
    """``users`` (fresh) share the coupon a minute apart, each to its own friend."""
    for i, u in enumerate(users):
        s.share(DAY3 + i * 60_000, u, (f"friend-{u}",))
    assert s.flagged(users, DAY3 + HOUR) == users


def test_a_launch_of_five_loses_every_flag_when_two_seeds_are_passed_on() -> None:
    s = Stream()
    seeds = [f"seed-{i}" for i in range(5)]
    burst(s, seeds)
    s.share(DAY3 + 2 * HOUR, "friend-seed-0", ("y",))
    # four fresh sharers left: still a fresh burst; only the passer's flag went
    assert s.flagged(seeds, DAY3 + 2 * HOUR) == seeds[1:]
    s.share(DAY3 + 3 * HOUR, "friend-seed-3", ("y",))
    assert s.flagged(seeds, DAY3 + 3 * HOUR) == []


def test_a_group_of_six_keeps_its_flags_when_one_target_passes_it_on() -> None:
    s = Stream()
    group = [f"member-{i}" for i in range(6)]
    burst(s, group)
    s.share(DAY3 + 2 * HOUR, "friend-member-2", ("y",))
    assert s.flagged(group, DAY3 + 2 * HOUR) == [g for g in group if g != "member-2"]


def test_off_clears_the_passer_only() -> None:
    s = Stream(replace(SignalConfig(), fresh_burst_passed_on=False))
    seeds = [f"seed-{i}" for i in range(4)]
    burst(s, seeds)
    s.share(DAY3 + 2 * HOUR, "friend-seed-0", ("y",))
    assert s.flagged(seeds, DAY3 + 2 * HOUR) == seeds[1:]


def test_a_passer_no_longer_counts_as_fresh_in_its_burst() -> None:
    s = Stream()
    users = [f"u{i}" for i in range(5)]
    for i, u in enumerate(users[:3]):
        s.share(DAY3 + i * 60_000, u, (f"friend-{u}",))
    s.share(DAY3 + 4 * 60_000, "friend-u0", ("y",))  # passes it on within the burst
    for i, u in enumerate(users[3:]):
        s.share(DAY3 + (5 + i) * 60_000, u, (f"friend-{u}",))
    # u1 to u4 are fresh (four of six sharers): a fresh burst, without u0
    assert s.flagged(users, DAY3 + 7 * 60_000) == ["u1", "u2", "u3", "u4"]
