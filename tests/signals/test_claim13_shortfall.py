"""dead_recipients: a sharer whose recipients claim other sharers' coupons
and not its own counts the claims missing (``claim_shortfall``, claim13): a
spammer with many friends, whose friends share to it (``dead_offset``)."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.base import Reading
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.dead import DeadRecipients
from riskservice.signals.share import Outcome, Share

MONTH = 30 * DAY_MS
FRIENDS = ("a", "b", "c", "d", "e", "f")
PAIRS = (("a", "b"), ("c", "d"), ("e", "f"))
# Twelve friends share to the spammer: they offset every dead recipient it has.
SENDERS = [f"friend-{i}" for i in range(12)]


def send(dead: DeadRecipients, sharer: str, n: int, t: int, recipients: tuple[str, ...],
         claimed: int = 0) -> Reading:
    """``sharer`` sends coupon ``c{n}`` to ``recipients`` at ``t``, reported at
    once with ``claimed`` of them claiming; its reading."""
    share = Share(f"{sharer}-x{n}", t, sharer, f"dev-{sharer}", f"c{n}", recipients, True)
    dead.share(share)
    return dead.outcome(share, Outcome(share.decision_id, t, len(recipients), claimed))[-1]


def others_send(dead: DeadRecipients, claimed: int, times: int = 2) -> None:
    """``times`` other sharers each send one coupon to all of :data:`FRIENDS`,
    ``claimed`` of the six claiming."""
    for k in range(times):
        send(dead, f"o{k}", 100 + k, k, FRIENDS, claimed)


def spam(dead: DeadRecipients, claimed: tuple[int, ...] = (0, 0, 0)) -> list[int]:
    """The spammer "s" sends one coupon to each pair of :data:`PAIRS`, a
    second apart from t=1000; its values."""
    sends = enumerate(zip(PAIRS, claimed, strict=True))
    return [send(dead, "s", n, 1000 + n * 1000, pair, c).value for n, (pair, c) in sends]


def test_friends_who_claim_from_others_and_never_from_it_count_as_missing_claims() -> None:
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=6)
    # each friend claimed both coupons from others: two claims expected per
    # report, none brought; counted from the third report that expected one
    assert spam(dead) == [0, 0, 6]


def test_the_reading_holds_until_its_first_report_leaves_the_window() -> None:
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=6)
    spam(dead)
    reading = send(dead, "s", 9, 5000, ("a",))
    assert reading == Reading("s", 7, 1000 + MONTH)


def test_friends_who_claim_from_nobody_expect_nothing() -> None:
    # A real user whose friends seldom claim: they do not claim others' coupons either.
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=0)
    assert spam(dead) == [0, 0, 0]


def test_claims_over_a_quarter_of_those_expected_count_nothing() -> None:
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=6)
    # one of a pair claimed: a claim brought of two expected
    assert spam(dead, claimed=(1, 0, 0)) == [0, 0, 5]  # 1 of 6, under a quarter
    # a second: 2 of 8 is a quarter still, 3 of 10 is over
    assert send(dead, "s", 3, 4000, ("a", "b"), claimed=1).value == 6
    assert send(dead, "s", 4, 5000, ("c", "d"), claimed=1).value == 0


def test_the_sharers_own_receipts_give_no_rate() -> None:
    # Friends only this sharer (and one other sharer) sent coupons to: no
    # rate from others (two receipts needed), whatever the sharer sent them.
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=6, times=1)
    assert spam(dead) + spam(dead) == [0] * 6


def test_one_report_however_many_it_names_is_one_observation() -> None:
    dead = DeadRecipients(SignalConfig(), lambda user, now: SENDERS)
    others_send(dead, claimed=6)
    # six expected claims in one unclaimed group send, then two claimed ones
    assert send(dead, "s", 0, 1000, FRIENDS).value == 0
    assert send(dead, "s", 1, 2000, ("a",), claimed=1).value == 0
    # the third report expecting a claim: 7 expected, 1 brought
    assert send(dead, "s", 2, 3000, ("b",)).value == 7


def test_the_value_is_the_larger_of_dead_recipients_and_missing_claims() -> None:
    # Without senders: six dead recipients (three unclaimed receipts each).
    more_missing, more_dead = DeadRecipients(SignalConfig()), DeadRecipients(SignalConfig())
    others_send(more_missing, claimed=6)
    others_send(more_dead, claimed=1)  # a sixth of a claim per receipt elsewhere
    assert [send(more_missing, "s", n, 1000 + n * 1000, FRIENDS).value for n in range(3)] == [0, 0, 18]
    assert [send(more_dead, "s", n, 1000 + n * 1000, FRIENDS).value for n in range(3)] == [0, 0, 6]


def test_the_measure_can_be_turned_off() -> None:
    dead = DeadRecipients(replace(SignalConfig(), claim_shortfall=0.0), lambda user, now: SENDERS)
    others_send(dead, claimed=6)
    assert spam(dead) == [0, 0, 0]
    assert len(dead.claims) == 0
