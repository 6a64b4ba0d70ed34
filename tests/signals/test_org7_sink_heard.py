"""A sink judged from its inflow loses a piece of evidence per sharer of it
that was shared to in the window (recipients.py, ``sink_heard``).

The shape was traced on simulated worlds (hard and mixed profiles, 10 000
users): a quiet real user who claims a lot and never shares, reached by
three to five quiet friends whose first share in the window went to it
(fresh, so evidence), and by one to six friends who hear from others; at
exactly the threshold, every share naming it was refused for the month,
mostly by those established friends.
"""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_board import MONTH, T0, Stream

DAY3 = 3 * DAY_MS


def stream(heard: bool = True) -> Stream:
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), sink_heard=heard))
    s.share(0, "old", ("x",))  # the consumer's history begins
    return s


def quiet_friends(s: Stream, n: int, t: int = DAY3) -> None:
    """``n`` fresh accounts (nobody shared to them, first share now) share to
    the claimer and to a friend of theirs; the claimer claims."""
    for i in range(n):
        s.share(t + i * 1000, f"quiet-{i}", ("claimer", f"friend-{i}"), claimed=1, coupon=f"c{i}")


def heard_friend(s: Stream, t: int, name: str = "known") -> None:
    """An account that was shared to shares to the claimer, who claims."""
    s.share(t, "old", (name,), coupon="o")
    s.share(t + 100, name, ("claimer",), claimed=1, coupon="k")


def test_a_claimer_whose_friends_hear_from_others_is_no_sink_on_three_quiet_friends() -> None:
    # Three quiet friends and one that hears from others: two pieces of
    # evidence, under the threshold (three without the setting).
    for heard, expected in ((True, None), (False, (3, T0 + DAY3 + MONTH))):
        s = stream(heard)
        heard_friend(s, DAY3 - 10_000)
        quiet_friends(s, 3)
        assert s.flag("r", "claimer", DAY3 + 5000) == expected


def test_a_hoarder_needs_one_more_fresh_feeder_per_sharer_that_hears_from_others() -> None:
    # Four feeders and one established sharer: three pieces of evidence left.
    s = stream()
    heard_friend(s, DAY3 - 10_000)
    quiet_friends(s, 4)
    assert s.flag("r", "claimer", DAY3 + 5000) == (3, T0 + DAY3 + MONTH)
    # A second established sharer takes it under the threshold: withdrawn.
    heard_friend(s, DAY3 + 6000, name="known-2")
    assert s.flag("r", "claimer", DAY3 + 7000) is None


def test_a_hoarder_fed_by_accounts_nobody_shares_to_is_flagged_as_before() -> None:
    for heard in (True, False):
        s = stream(heard)
        quiet_friends(s, 3)
        assert s.flag("r", "claimer", DAY3 + 5000) is not None
