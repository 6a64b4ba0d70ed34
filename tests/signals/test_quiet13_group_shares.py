"""A share naming more than ``FEED_RECIPIENTS`` accounts is no evidence that
its fresh sharer feeds one of them (recipients.py).

The shape was traced on a simulated world (mixed profile, 10 000 users,
seed 384): a quiet real user who claims a lot and never shares was made a
sink by two new-looking fans who each pushed a coupon to five friends at
once, it among them, and one quiet friend's chat; a share naming it was then
refused. A hoarder's feeders name it alone or with one cover.
"""

from __future__ import annotations

import pytest

from riskservice.signals import recipients
from riskservice.signals.catalog import DAY_MS
from tests.signals.test_board import MONTH, T0, Stream

DAY3 = 3 * DAY_MS


def stream() -> Stream:
    s = Stream()
    s.share(0, "old", ("x",))  # the consumer's history begins
    return s


def fans_and_a_friend(s: Stream) -> None:
    """Two fresh fans push a coupon each to five friends (the claimer one of
    them, three of five claim), and a fresh friend chats to it (claimed)."""
    for i in range(2):
        group = ("claimer", *(f"friend-{i}-{j}" for j in range(4)))
        s.share(DAY3 + i * 1000, f"fan-{i}", group, claimed=3, coupon=f"push-{i}")
    s.share(DAY3 + 2000, "quiet", ("claimer",), claimed=1, coupon="q")


def test_a_quiet_claimer_reached_in_group_shares_is_no_sink() -> None:
    s = stream()
    fans_and_a_friend(s)
    # One piece of evidence (the chat), not three.
    assert s.flag("r", "claimer", DAY3 + 3000) is None


def test_the_same_claimer_was_a_sink_when_group_shares_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipients, "FEED_RECIPIENTS", 10)
    s = stream()
    fans_and_a_friend(s)
    assert s.flag("r", "claimer", DAY3 + 3000) == (3, T0 + DAY3 + MONTH)


@pytest.mark.parametrize("covers", [0, 1, 2])
def test_feeders_naming_the_hoarder_with_up_to_two_covers_still_make_it_a_sink(covers: int) -> None:
    s = stream()
    for i in range(3):
        names = ("hoarder", *(f"cover-{i}-{j}" for j in range(covers)))
        s.share(DAY3 + i * 1000, f"feeder-{i}", names, claimed=1 + (covers > 1), coupon=f"c{i}")
    assert s.flag("r", "hoarder", DAY3 + 3000) == (3, T0 + DAY3 + MONTH)


def test_a_fresh_account_whose_group_share_names_a_sink_is_no_feeder() -> None:
    s = stream()
    for i in range(3):
        s.share(DAY3 + i * 1000, f"feeder-{i}", ("hoarder", f"cover-{i}"), claimed=1, coupon=f"c{i}")
    # A new fan's group share naming the hoarder: the hoarder stays a sink
    # (its evidence unchanged), the fan is not flagged ...
    s.share(DAY3 + 5000, "fan", ("hoarder", "a", "b", "c"), claimed=2, coupon="p")
    assert s.flag("r", "hoarder", DAY3 + 6000) == (3, T0 + DAY3 + MONTH)
    assert s.flag("s", "fan", DAY3 + 6000) is None
    # ... while a fourth feeder's chat to it is evidence, and flags it.
    s.share(DAY3 + 7000, "feeder-3", ("hoarder",), allowed=False, coupon="c3")
    assert s.flag("s", "feeder-3", DAY3 + 8000) == (4, T0 + DAY3 + 7000 + 3 * DAY_MS)


def test_a_fan_whose_group_share_helped_make_a_sink_is_not_published_with_its_feeders() -> None:
    # Three feeders' chats make the sink; a fresh fan's group share to it
    # before then is no evidence, so the fan is not published as one of the
    # sink's earlier fresh sharers (recipients.py, _feeders).
    s = stream()
    s.share(DAY3 - 1000, "fan", ("hoarder", "a", "b", "c"), claimed=2, coupon="p")
    for i in range(3):
        s.share(DAY3 + i * 1000, f"feeder-{i}", ("hoarder",), claimed=1, coupon=f"c{i}")
    assert s.flag("r", "hoarder", DAY3 + 3000) is not None
    assert s.flag("s", "feeder-0", DAY3 + 3000) is not None
    assert s.flag("s", "fan", DAY3 + 3000) is None
