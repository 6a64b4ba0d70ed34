"""dead_recipients: a receipt its recipient passed on (shared the same coupon
at or after it) is not an unclaimed one (``dead_passed_on``, dead10)."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.dead import RECEIPTS_PER_COUPON, DeadRecipients
from riskservice.signals.share import Outcome, Share

FRIENDS = ("a", "b", "c")


def send(dead: DeadRecipients, n: int, t: int, recipients: tuple[str, ...] = FRIENDS) -> int:
    """The sharer "s" sends coupon ``c{n}`` to ``recipients`` at ``t``, reported
    at once with nobody claiming (as a replay reports a small share); its value."""
    share = Share(f"x{n}", t, "s", "ds", f"c{n}", recipients, True)
    dead.share(share)
    readings = dead.outcome(share, Outcome(f"x{n}", t, len(recipients), 0))
    return readings[-1].value


def test_three_unclaimed_sends_make_three_dead_friends() -> None:
    dead = DeadRecipients(SignalConfig())
    assert [send(dead, n, n * 1000) for n in range(3)] == [0, 0, 3]


def test_a_friend_who_passed_a_coupon_on_is_not_dead() -> None:
    dead = DeadRecipients(SignalConfig())
    send(dead, 0, 0)
    # "a" shares the coupon it just got: the report came first, the receipt is taken back
    readings = dead.share(Share("y0", 500, "a", "da", "c0", ("z",), True))
    assert [(r.entity, r.value) for r in readings] == [("s", 0)]
    assert send(dead, 1, 1000) == 0
    dead.share(Share("y1", 1500, "a", "da", "c1", (), True))
    assert send(dead, 2, 2000) == 2  # "a" has one unclaimed receipt, "b" and "c" three
    assert send(dead, 3, 3000) == 3  # and now two


def test_a_pass_after_the_reading_lowers_the_published_value() -> None:
    dead = DeadRecipients(SignalConfig())
    for n in range(3):
        send(dead, n, n * 1000)
    readings = dead.share(Share("y2", 2500, "a", "da", "c2", (), True))
    assert [(r.entity, r.value) for r in readings] == [("s", 3)]  # "a" still has two
    readings = dead.share(Share("y1", 2600, "a", "da", "c1", (), True))
    assert [(r.entity, r.value) for r in readings] == [("s", 2)]


def test_a_share_before_the_receipt_is_no_pass() -> None:
    dead = DeadRecipients(SignalConfig())
    # "a" shared c1 before "s" sent it to it: not a reaction to that receipt
    dead.share(Share("y1", 500, "a", "da", "c1", (), True))
    assert [send(dead, n, n * 1000) for n in range(3)] == [0, 0, 3]


def test_a_late_report_skips_a_receipt_already_passed_on() -> None:
    dead = DeadRecipients(SignalConfig())
    for n in range(3):
        share = Share(f"x{n}", n * 1000, "s", "ds", f"c{n}", FRIENDS, True)
        dead.share(share)
        if n == 0:
            dead.share(Share("y0", 100, "a", "da", "c0", (), True))
        dead.outcome(share, Outcome(f"x{n}", n * 1000 + 600, 3, 0))
    counts = dead.sharers.peek("s", 3000)
    assert counts is not None
    assert {r: counts.get(r, 3000) for r in FRIENDS} == {"a": 2, "b": 3, "c": 3}


def test_off_counts_every_unclaimed_receipt() -> None:
    dead = DeadRecipients(replace(SignalConfig(), dead_passed_on=False))
    send(dead, 0, 0)
    assert dead.share(Share("y0", 500, "a", "da", "c0", ("z",), True)) == []
    assert [send(dead, n, n * 1000) for n in (1, 2)] == [0, 3]


def test_the_receipts_kept_per_coupon_are_bounded() -> None:
    # "s" sends the same coupon to "a" twenty times, nobody claiming: only the
    # latest RECEIPTS_PER_COUPON are kept to be taken back, so a pass takes
    # back that many and the rest stay counted.
    dead = DeadRecipients(SignalConfig())
    for i in range(20):
        share = Share(f"x{i}", i * 1000, "s", "ds", "c0", ("a",), True)
        dead.share(share)
        dead.outcome(share, Outcome(f"x{i}", i * 1000, 1, 0))
    assert len(dead.heard.peek("a", 20_000).get("c0", 20_000)) == RECEIPTS_PER_COUPON
    dead.share(Share("y0", 20_500, "a", "da", "c0", (), True))
    assert dead.sharers.peek("s", 20_500).get("a", 20_500) == 20 - RECEIPTS_PER_COUPON
