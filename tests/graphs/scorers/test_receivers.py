"""Hoarders scored from what they receive and claim, their feeders, and look-alikes that are neither."""

from __future__ import annotations

from typing import Any

from graphs.scorers.rows import score_events
from tests.graphs.helpers import HOUR, background, share


def by_node(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["node"]: r for r in rows if r["kind"] == "user"}


def signal(row: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in row["signals"] if s["name"] == name), None)


def fed_hoarder(feeders: int = 15) -> list[dict[str, Any]]:
    """A hoarder fed by fresh accounts, each sharing twice to it and to a real user, on the background."""
    events = background()
    for i in range(feeders):
        # both recipients claim: the hoarder always, the real friend this time
        events += [share(f"feeder{i}", f"bg{k}", (20 * i + k) * HOUR, ["hoard", f"p{i}"], claimed=2)
                   for k in range(2)]
    return events


def test_hoarder_found_from_its_receipts_and_its_feeders_from_it() -> None:
    rows = by_node(score_events(fed_hoarder()))
    hoard = signal(rows["hoard"], "hoarder")
    assert hoard is not None and hoard["score"] == 1.0 and hoard["value"] == 15.0
    assert hoard["detail"] == ("15 of its 15 sharers are fresh accounts; claimed 30.0 of 30 receipts; "
                               "shares nothing itself")
    assert rows["hoard"]["anomaly"] == 1.0
    for i in range(15):
        feed = signal(rows[f"feeder{i}"], "feeder")
        assert feed is not None and feed["score"] == 1.0
        assert feed["detail"] == "a fresh account (freshness 1.00) sharing to a suspected hoarder (1.00)"
    # the real friends who got the cover shares, and the background, stay clean
    assert max(r["anomaly"] for n, r in rows.items() if n[0] in "op") < 0.1


def test_a_real_user_hearing_from_many_friends_is_no_hoarder() -> None:
    events = background()
    # fifteen established users (they receive and share all along) share to one friend who claims every time
    events += [share(f"o{i}", f"bg{i % 6}", (i * 17 + 5) * HOUR, ["popular"], claimed=1) for i in range(15)]
    rows = by_node(score_events(events))
    assert signal(rows["popular"], "hoarder") is None
    # what little doubt there is comes from the tiny background's own block, not from the receipts
    assert {s["name"] for s in rows["popular"]["signals"] if s["family"] == "anomaly"} <= {"dense_block"}


def test_fresh_sharers_to_real_users_are_not_feeders() -> None:
    events = background()
    # newcomers sharing once to a background friend: fresh, but nobody they reach hoards
    events += [share(f"new{i}", f"bg{i % 6}", (i * 13 + 2) * HOUR, [f"p{i}"], claimed=1) for i in range(15)]
    rows = by_node(score_events(events))
    assert all(signal(rows[f"new{i}"], "feeder") is None for i in range(15))
    assert max(rows[f"new{i}"]["anomaly"] for i in range(15)) < 0.1


def test_lockstep_spread_over_minutes_is_caught_at_the_slow_scale() -> None:
    events = background(60, coupons=6)
    group = [f"bot{i}" for i in range(6)]
    for c in range(3):
        start = c * 50 * HOUR + 20 * HOUR  # the coupon's organic shares are over by now
        # 90 s apart: never four shares within a minute, all within eight minutes
        events += [share(b, f"bg{c}", start + 90 * i, [f"o{(c * 9 + i) % 60}"], claimed=0)
                   for i, b in enumerate(group)]
    rows = by_node(score_events(events))
    for b in group:
        lock = signal(rows[b], "lockstep")
        assert lock is not None and lock["value"] == 3.0 and lock["score"] == 1.0
    assert all(signal(r, "lockstep") is None for n, r in rows.items() if n.startswith("o"))


def test_a_flash_sale_crowd_on_three_coupons_is_no_lockstep_group() -> None:
    events = background(60, coupons=6)
    fans = [f"fan{i}" for i in range(150)]
    for c in range(3):
        start = c * 50 * HOUR + 3 * HOUR
        events += [share(f, f"bg{c}", start + 0.3 * i, [f"p{(i + c) % 400}"], claimed=1) for i, f in enumerate(fans)]
    rows = by_node(score_events(events))
    # 150 accounts a minute: each meeting counts 60 / 150 of a coupon, so three sales make 1.2 coupons
    lock = signal(rows["fan0"], "lockstep")
    assert lock is None or lock["score"] < 0.1
    assert max(rows[f]["anomaly"] for f in fans) < 0.5
