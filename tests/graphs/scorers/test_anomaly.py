"""Each anomaly kind on a small hand-built graph, with exact scores and signals."""

from __future__ import annotations

import math
from typing import Any

import pytest

from graphs.scorers.rows import score_events
from tests.graphs.helpers import HOUR, background, share


def by_node(rows: list[dict[str, Any]], kind: str = "user") -> dict[str, dict[str, Any]]:
    return {r["node"]: r for r in rows if r["kind"] == kind}


def signal(row: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in row["signals"] if s["name"] == name), None)


def test_device_farm_flags_device_and_accounts() -> None:
    events = background()
    events += [share(f"farm{i}", "bg0", 100 + i, [f"o{i}"], device="phone", claimed=1) for i in range(9)]
    rows = score_events(events)
    dev = by_node(rows, "device")["phone"]
    assert dev["anomaly"] == 1.0
    assert signal(dev, "device_farm")["value"] == 9.0
    assert signal(dev, "device_farm")["detail"] == "9 accounts shared from this device"
    users = by_node(rows)
    assert all(users[f"farm{i}"]["anomaly"] == 1.0 for i in range(9))
    assert signal(users["farm0"], "device_farm")["score"] == 1.0
    # the ordinary users the farm wrote to: a trace of doubt, below any signal worth showing
    assert max(r["anomaly"] for n, r in users.items() if n.startswith("o")) < 0.1
    assert all(not r["signals"] or r["signals"][0]["family"] == "kol" for n, r in users.items() if n.startswith("o"))
    assert max(r["anomaly"] for n, r in by_node(rows, "device").items() if n != "phone") < 0.1


def test_star_sprayer_and_its_fake_sinks() -> None:
    events = background()
    sinks = [f"sink{j}" for j in range(60)]
    # 30 shares of 8 sinks each, nobody ever claims
    events += [share("sprayer", f"bg{i % 6}", i * HOUR, [sinks[(i * 8 + j) % 60] for j in range(8)], claimed=0)
               for i in range(30)]
    rows = by_node(score_events(events))
    star = signal(rows["sprayer"], "star_spray")
    assert star is not None and star["score"] == 1.0 and star["value"] == 60.0
    assert rows["sprayer"]["anomaly"] == 1.0
    # every sink heard 4 times from the same suspicious sharer and from nobody else
    for s in sinks:
        sink = signal(rows[s], "fake_sink")
        assert sink is not None and sink["value"] == 4.0 and sink["score"] == 1.0
        assert rows[s]["anomaly"] == 1.0
    assert max(r["anomaly"] for n, r in rows.items() if n.startswith("o")) < 0.1


def test_star_sprayer_hidden_by_camouflage_owns_most_deliveries() -> None:
    events = background()
    sinks = [f"sink{j}" for j in range(10)]
    # 45 shares, each to 3 of its 10 sinks and to one real user never seen again; the real
    # users claim, so the claim rate is the typical 25 % and only 10 of 55 recipients are owned
    events += [share("sprayer", f"bg{i % 6}", i * HOUR, [sinks[(3 * i + j) % 10] for j in range(3)] + [f"cam{i}"],
                     claimed=1) for i in range(45)]
    rows = by_node(score_events(events))
    star = signal(rows["sprayer"], "star_spray")
    assert star is not None and star["score"] == 1.0 and star["value"] == 55.0
    assert star["detail"] == ("shared to 55 distinct recipients; claim rate 0% below typical; "
                              "10 of them hear only from it (75% of its deliveries)")
    for s in sinks:
        sink = signal(rows[s], "fake_sink")
        assert sink is not None and sink["score"] == 1.0
    # a real user it reached once is only a lone recipient of a suspicious share
    assert max(r["anomaly"] for n, r in rows.items() if n.startswith("cam")) < 0.5
    assert max(r["anomaly"] for n, r in rows.items() if n.startswith("o")) < 0.1


def test_weak_sprayer_under_the_gate_still_marks_its_captive_audience() -> None:
    events = background()
    sinks = [f"sink{j}" for j in range(12)]
    # 30 shares, each to 3 of 12 sinks, to two real users never reached again and, three
    # times, to an ordinary sharer of the background; the claim rate is near the typical one
    events += [share("sprayer", f"bg{i % 6}", i * HOUR,
                     [sinks[(3 * i + j) % 12] for j in range(3)] + [f"cam{2 * i}", f"cam{2 * i + 1}"]
                     + ([f"o{i}"] if i < 3 else []), claimed=1) for i in range(30)]
    rows = by_node(score_events(events))
    star = signal(rows["sprayer"], "star_spray")
    assert star is not None and 0.0 < star["score"] < 0.5
    assert rows["sprayer"]["anomaly"] < 0.5  # under sink_suspect: no sink the old way
    # a sink hears from it alone, again and again, and never shares: its sprayer's spray score
    for s in sinks:
        sink = signal(rows[s], "fake_sink")
        assert sink is not None and sink["score"] == star["score"] and sink["value"] in (7.0, 8.0)
    # reached once, alone: a third of it, far under any cut
    cam = signal(rows["cam0"], "fake_sink")
    assert cam is not None and cam["score"] == pytest.approx(star["score"] / 3, abs=1e-4)
    # an ordinary user who also hears from others, or shares, keeps the gate
    assert all(signal(rows[f"o{i}"], "fake_sink") is None for i in range(3))


def test_dense_block_survives_camouflage() -> None:
    events = background(90)
    sharers = [f"ring{i}" for i in range(8)]
    targets = [f"tgt{j}" for j in range(10)]
    for i, s in enumerate(sharers):
        # every sharer hits every target over two shares, spread in time (no lockstep)
        events.append(share(s, "bg1", 3 * HOUR * i, targets[:5], claimed=2))
        events.append(share(s, "bg2", 3 * HOUR * i + HOUR, targets[5:], claimed=3))
        # camouflage: as many ordinary shares to ordinary users
        events += [share(s, "bg3", 3 * HOUR * i + 2 * HOUR + k, [f"o{(11 * i + 7 * k) % 90}"], claimed=1)
                   for k in range(10)]
    rows = by_node(score_events(events))
    for n in sharers + targets:
        dense = signal(rows[n], "dense_block")
        assert dense is not None and dense["score"] == 1.0, n
        assert dense["value"] == pytest.approx(80 / math.log(8 + 5) / 18, rel=1e-4)  # 80 edges at 1/log(8 + 5)
    # the camouflaged-to users are not in the block
    assert all(signal(r, "dense_block") is None for n, r in rows.items() if n.startswith("o"))


def test_lockstep_group_on_three_coupons() -> None:
    events = background(60, coupons=6)
    group = [f"bot{i}" for i in range(6)]
    for c in range(3):
        start = c * 50 * HOUR + 3 * HOUR  # inside each coupon's organic life
        events += [share(b, f"bg{c}", start + 5 * i, [f"o{(c * 9 + i) % 60}"], claimed=0)
                   for i, b in enumerate(group)]
    rows = by_node(score_events(events))
    for b in group:
        lock = signal(rows[b], "lockstep")
        assert lock is not None and lock["value"] == 3.0 and lock["score"] == 1.0
        assert "5 accounts did so on 2+ coupons" in lock["detail"]
    assert all(signal(r, "lockstep") is None for n, r in rows.items() if n.startswith("o"))


def test_non_decaying_burst_and_organic_decay() -> None:
    events = background()
    events += [share("pusher", "bg4", h * HOUR, [f"o{h % 60}"], claimed=0) for h in range(30)]
    # an eager but decaying sharer: 8 shares, most within the first hour
    events += [share("eager", "bg5", 60 * (2 ** k), [f"o{k}"], claimed=1) for k in range(8)]
    rows = by_node(score_events(events))
    burst = signal(rows["pusher"], "non_decaying_burst")
    assert burst is not None and burst["score"] == 1.0 and burst["value"] == 1.0  # 15 late / 15 early
    assert signal(rows["eager"], "non_decaying_burst") is None


def test_low_claim_rate_needs_volume_and_a_real_gap() -> None:
    events = background()
    events += [share("spam", "bg0", i * 600, None, count=10, claimed=0) for i in range(10)]
    events += [share("unlucky", "bg0", 7, None, count=10, claimed=0)]
    rows = by_node(score_events(events))
    low = signal(rows["spam"], "low_claim_rate")
    assert low is not None and low["score"] == 1.0
    assert low["detail"] == "0 claims from 100 recipients (typical rate 25%)"
    assert signal(rows["unlucky"], "low_claim_rate") is None


def test_low_claim_rate_counts_a_chat_post_as_one_share() -> None:
    events = background()
    # one post to a chat of 40 that nobody claims: one unlucky share, not 40 refusals
    events += [share("chat", "bg0", 7, None, count=40, claimed=0)]
    # 30 shares to the same three friends, never claimed: 90 recipients, 30 shares
    events += [share("pest", f"bg{i % 6}", i * 600, ["f0", "f1", "f2"], claimed=0) for i in range(30)]
    rows = by_node(score_events(events))
    assert signal(rows["chat"], "low_claim_rate") is None
    low = signal(rows["pest"], "low_claim_rate")
    assert low is not None and low["score"] == 1.0
    assert low["detail"] == "0 claims from 90 recipients (typical rate 25%)"


def test_low_claim_rate_judges_posts_against_posts() -> None:
    events = background()  # named shares to four friends, one claim each: 25 %
    # eight ordinary posters: a timeline post of 20 viewers gets one claim (5 %)
    events += [share(f"fan{j}", f"bg{i}", 100 * j + i, None, count=20, claimed=1) for j in range(8) for i in range(3)]
    # a poster with 2 claims from 80 viewers: short of the named shares' 25 %, not of posts' 5 %
    events += [share("poster", f"bg{i}", 900 + i, None, count=20, claimed=2 if i < 2 else 0) for i in range(4)]
    # ten posts nobody claims, and 30 named shares to three friends nobody claims
    events += [share("spam", f"bg{i % 6}", 1000 + i, None, count=20, claimed=0) for i in range(10)]
    events += [share("pest", f"bg{i % 6}", i * 600, ["f0", "f1", "f2"], claimed=0) for i in range(30)]
    rows = by_node(score_events(events))
    assert signal(rows["poster"], "low_claim_rate") is None
    assert all(signal(rows[f"fan{j}"], "low_claim_rate") is None for j in range(8))
    spam = signal(rows["spam"], "low_claim_rate")
    assert spam is not None and spam["score"] == 1.0
    assert spam["detail"] == "0 claims from 200 recipients (typical rate 5%)"
    pest = signal(rows["pest"], "low_claim_rate")
    assert pest is not None and pest["score"] == 1.0
    assert pest["detail"] == "0 claims from 90 recipients (typical rate 25%)"


def test_refused_attempts_are_evidence() -> None:
    events = background()
    events += [share("pushy", "bg0", i, ["o1"], decision="block") for i in range(5)]
    rows = by_node(score_events(events))
    ref = signal(rows["pushy"], "refused_attempts")
    assert ref is not None and ref["score"] == 1.0 and ref["detail"].startswith("5 of 5 share attempts")
