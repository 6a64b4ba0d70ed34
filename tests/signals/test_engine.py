"""Each signal on crafted share streams: exact values, floors, and where they are written."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine, Write
from riskservice.signals.repeat import CouponRepeat
from riskservice.signals.share import Outcome, Share

T0 = 1_760_000_000_000
MONTH = 30 * DAY_MS
# Every share its own sitting (coupon_repeat counts sittings an hour apart):
# the publishing tests below push one coupon a second apart.
EACH_A_SITTING = SignalConfig(repeat_gap_ms=0)


def share(engine: SignalEngine, n: int, t: int, user: str, device: str = "", coupon: str = "c1",
          recipients: tuple[str, ...] = (), allowed: bool = True) -> list[Write]:
    return engine.share(Share(f"x{n}", T0 + t, user, device or f"dev-{user}", coupon, recipients, allowed))


def outcome(engine: SignalEngine, n: int, t: int, delivered: int, claimed: int) -> list[Write]:
    return engine.outcome(Outcome(f"x{n}", T0 + t, delivered, claimed))


def published(engine: SignalEngine, code: str, entity: str, t: int) -> str | None:
    return engine.published.get((code, entity), T0 + t)


def test_device_rotation_publishes_from_its_floor_on_the_device() -> None:
    engine = SignalEngine()
    writes = [share(engine, i, i * 1000, f"u{i}", device="d1") for i in range(5)]
    # Three accounts (a family) write nothing; the fourth and fifth write the count,
    # valid until the first account's share leaves the 30-day window.
    assert writes[:3] == [[], [], []]
    assert writes[3] == [Write("risk:{d:d1}:sig", "r", f"4@{T0 + MONTH}")]
    assert writes[4] == [Write("risk:{d:d1}:sig", "r", f"5@{T0 + MONTH}")]
    # The same account again changes nothing, so nothing is written.
    assert share(engine, 9, 9000, "u4", device="d1") == []


def test_the_engine_gives_device_rotation_its_records_of_friends_of_their_own() -> None:
    engine = SignalEngine()
    n = 0
    # Two of the phone's five accounts heard from five friends each, on the friends' own phones.
    for member in ("m0", "m1"):
        for i in range(5):
            n += 1
            share(engine, n, n * 1000, f"{member}-f{i}", device=f"own-{member}-{i}", recipients=(member,))
    writes = [share(engine, 100 + i, 100_000 + i * 1000, f"m{i}", device="home", recipients=("x",))
              for i in range(5)]
    # Only three accounts count: the phone stays under the floor of four.
    assert [w for w in writes if any(x.key == "risk:{d:home}:sig" for x in w)] == []


def test_coupon_repeat_goes_to_every_device_of_the_sharer_and_to_a_new_one() -> None:
    engine = SignalEngine(EACH_A_SITTING)
    share(engine, 0, 0, "u1", device="d1")
    share(engine, 1, 1000, "u1", device="d2")
    writes = share(engine, 2, 2000, "u1", device="d1")
    until = T0 + 3 * DAY_MS
    # (devices least recently used first)
    assert writes == [Write("risk:{d:d2}:sig", "c|u1", f"3@{until}"), Write("risk:{d:d1}:sig", "c|u1", f"3@{until}")]
    # A first share from a third device carries the value there (and the count grows).
    writes = share(engine, 3, 3000, "u1", device="d3")
    assert writes[0] == Write("risk:{d:d3}:sig", "c|u1", f"3@{until}")
    assert Write("risk:{d:d3}:sig", "c|u1", f"4@{until}") in writes
    # Other coupons do not add up: the value is the largest per coupon.
    assert share(engine, 4, 4000, "u1", device="d1", coupon="c2") == []
    # Three days after the first share it has left the window: the value
    # holds until the next oldest leaves.
    share(engine, 5, 3 * DAY_MS + 500, "u1", device="d1")
    assert published(engine, "coupon_repeat", "u1", 3 * DAY_MS + 500) == f"4@{T0 + 1000 + 3 * DAY_MS}"


def test_lockstep_flags_a_group_meeting_again_on_another_coupon() -> None:
    engine = SignalEngine()
    for i, user in enumerate("abcd"):
        share(engine, i, i * 1000, user, coupon="c1")
    # A flash sale: four accounts together once is nothing.
    assert [published(engine, "lockstep", u, 4000) for u in "abcd"] == [None] * 4
    # An hour later (another burst), three of them again on another coupon.
    for i, user in enumerate("abc"):
        share(engine, 10 + i, 3_600_000 + i * 1000, user, coupon="c2")
    now = 3_600_000 + 3000
    # a, b and c met each other on two coupons: two partners each. d met the
    # three of them once, and they are core members: three, flagged before
    # d shares again.
    # (valid until the first of their second meetings leaves the window)
    assert [published(engine, "lockstep", u, now) for u in "abc"] == [f"2@{T0 + 3_601_000 + MONTH}",
                                                                     f"2@{T0 + 3_601_000 + MONTH}",
                                                                     f"2@{T0 + 3_602_000 + MONTH}"]
    assert published(engine, "lockstep", "d", now) == f"3@{T0 + 3000 + MONTH}"


def test_a_single_meeting_with_a_group_counts_only_for_an_account_that_mostly_meets() -> None:
    engine = SignalEngine()
    # An admin shares eleven coupons of its own, a day apart ...
    for k in range(11):
        share(engine, 100 + k, k * DAY_MS, "admin", coupon=f"own-{k}")
    # ... and happens to share the twelfth in the middle of a group's burst.
    t = 12 * DAY_MS
    for i, user in enumerate("abc"):
        share(engine, i, t + i * 1000, user, coupon="c1")
    share(engine, 20, t + 3500, "admin", coupon="c1")
    share(engine, 21, t + 3500, "newbie", coupon="c1")  # a new account: its first share
    for i, user in enumerate("abc"):
        share(engine, 10 + i, t + 3_600_000 + i * 1000, user, coupon="c2")
    now = t + 3_600_000 + 3000
    # a, b and c are core members now; the newbie, whose sharing is all
    # meetings, is flagged for meeting them once; the admin, one coupon of
    # twelve, is not.
    assert published(engine, "lockstep", "newbie", now) == f"3@{T0 + t + 3500 + MONTH}"
    assert published(engine, "lockstep", "admin", now) is None


def test_a_single_meeting_with_a_group_counts_only_for_an_account_nobody_shares_to() -> None:
    engine = SignalEngine()
    # A friend sent "quiet" a coupon earlier in the month.
    share(engine, 0, 0, "friend", coupon="gift", recipients=("quiet",))
    t = DAY_MS
    for i, user in enumerate("abc"):
        share(engine, 1 + i, t + i * 1000, user, coupon="c1")
    # Its first share of the month falls in a group's burst; so does a new
    # account's. Both met the group's core once, all their sharing so far.
    share(engine, 4, t + 3500, "quiet", coupon="c1")
    share(engine, 5, t + 3500, "newbie", coupon="c1")
    for i, user in enumerate("abc"):
        share(engine, 10 + i, t + 3_600_000 + i * 1000, user, coupon="c2")
    now = t + 3_600_000 + 3000
    # The real user hears from a friend: no member; the new account is.
    assert published(engine, "lockstep", "quiet", now) is None
    assert published(engine, "lockstep", "newbie", now) == f"3@{T0 + t + 3500 + MONTH}"
    # Once somebody shares to the new account, it is read again: withdrawn.
    writes = share(engine, 20, now + 1000, "friend", coupon="gift-2", recipients=("newbie",))
    assert Write("risk:{d:dev-newbie}:sig", "l|newbie", None) in writes
    assert published(engine, "lockstep", "newbie", now + 1000) is None


def test_lockstep_bursts_are_bounded_in_time() -> None:
    engine = SignalEngine(replace(SignalConfig(), burst_ms=60_000))
    share(engine, 0, 0, "a", coupon="c1")
    share(engine, 1, 61_000, "b", coupon="c1")  # after the burst: they did not meet
    share(engine, 2, 100_000, "a", coupon="c2")
    share(engine, 3, 100_500, "b", coupon="c2")
    partners = engine.signals[1].partners.peek("a", T0 + 100_500)  # type: ignore[attr-defined]
    assert partners is not None and partners.get("b", T0 + 100_500) == ("c2",)


def test_meetings_on_a_crowded_coupon_stop_counting() -> None:
    # Ten fans meet on two flash-sale coupons; then each sale draws a crowd
    # of strangers: the fans' meetings stop counting, on both coupons.
    engine = SignalEngine(replace(SignalConfig(), crowd_sharers=20))
    lockstep = engine.signals[1]
    for k, coupon in enumerate(("sale-1", "sale-2")):
        for i in range(10):
            share(engine, 100 * k + i, 600_000 * k + i * 1000, f"fan{i}", coupon=coupon)
    partners = lockstep.partners.peek("fan0", T0 + 700_000)  # type: ignore[attr-defined]
    assert lockstep.reading("fan0", T0 + 700_000).value == 9  # type: ignore[attr-defined]
    for k, coupon in enumerate(("sale-1", "sale-2")):
        for i in range(10):
            share(engine, 1000 + 100 * k + i, 800_000 + 600_000 * k + i * 1000, f"stranger{k}-{i}", coupon=coupon)
    assert partners is not None and partners.get("fan1", T0 + 2_000_000) == ("sale-1", "sale-2")
    assert lockstep.reading("fan0", T0 + 2_000_000).value == 0  # type: ignore[attr-defined]


def test_dead_recipients_counts_repeated_unclaimed_receipts() -> None:
    engine = SignalEngine()
    pool = ("r1", "r2", "r3")
    share(engine, 0, 0, "s", recipients=pool)
    assert outcome(engine, 0, 10, delivered=3, claimed=0) == []
    share(engine, 1, 1000, "s", recipients=pool)
    # Every recipient got two unclaimed shares, but from two reports only:
    # what a real user's small circle of occasional claimers gives. Nothing yet.
    assert outcome(engine, 1, 1010, delivered=3, claimed=0) == []
    # A report where some claimed cannot say who: each recipient claimed 1/3
    # on average, so each count falls to 5/3, under 2: none is dead.
    share(engine, 2, 2000, "s", recipients=pool)
    assert outcome(engine, 2, 2010, delivered=3, claimed=1) == []
    # Unclaimed again: 8/3 each, dead, and the third unclaimed report: published.
    share(engine, 3, 3000, "s", recipients=pool)
    assert outcome(engine, 3, 3010, delivered=3, claimed=0) == [
        Write("risk:{d:dev-s}:sig", "d|s", f"3@{T0 + 3010 + MONTH}")]
    # A report where all claimed clears them (one left, under the floor).
    share(engine, 4, 4000, "s", recipients=("r1", "r2"))
    assert outcome(engine, 4, 4010, delivered=2, claimed=2) == [Write("risk:{d:dev-s}:sig", "d|s", None)]
    assert published(engine, "dead_recipients", "s", 4010) is None


def test_dead_recipients_waits_for_three_unclaimed_reports_however_many_they_name() -> None:
    engine = SignalEngine()
    friends = ("f1", "f2", "f3", "f4")
    for k in range(2):
        share(engine, k, k * DAY_MS, "s", recipients=friends)
        assert outcome(engine, k, k * DAY_MS + 10, delivered=4, claimed=0) == []
    # A third unclaimed report, even a chat to somebody else, completes the evidence.
    share(engine, 2, 2 * DAY_MS, "s", recipients=("other",))
    assert outcome(engine, 2, 2 * DAY_MS + 10, delivered=1, claimed=0) == [
        Write("risk:{d:dev-s}:sig", "d|s", f"4@{T0 + DAY_MS + 10 + MONTH}")]


def test_dead_recipients_needs_half_of_the_sharers_reports_unclaimed() -> None:
    engine = SignalEngine()
    group = tuple(f"m{i}" for i in range(10))
    # A group admin (a group of ten: under the fan-out limit, so no waiver
    # is written): three claimed sends (one member in ten each), then three
    # unclaimed ones. Every member is "dead" (3 - 3/10 receipts), three
    # reports said nobody claimed, and they are half of its six: published.
    for k in range(6):
        share(engine, k, k * DAY_MS, "admin", recipients=group)
        writes = outcome(engine, k, k * DAY_MS + 10, delivered=10, claimed=1 if k < 3 else 0)
    assert writes == [Write("risk:{d:dev-admin}:sig", "d|admin", f"10@{T0 + 5 * DAY_MS + 10 + MONTH}")]
    # A seventh send, claimed: the unclaimed reports are 3 of 7, under half,
    # and the value is withdrawn although the members are still "dead".
    share(engine, 6, 6 * DAY_MS, "admin", recipients=group)
    assert outcome(engine, 6, 6 * DAY_MS + 10, delivered=10, claimed=1) == [
        Write("risk:{d:dev-admin}:sig", "d|admin", None)]
    # A fourth unclaimed send makes it half again (4 of 8).
    share(engine, 7, 7 * DAY_MS, "admin", recipients=group)
    assert outcome(engine, 7, 7 * DAY_MS + 10, delivered=10, claimed=0) == [
        Write("risk:{d:dev-admin}:sig", "d|admin", f"10@{T0 + 7 * DAY_MS + 10 + MONTH}")]


def test_sink_feeders_are_flagged_when_their_recipients_become_sinks() -> None:
    engine = SignalEngine()
    sinks = ("t1", "t2")
    for i, sharer in enumerate(("s1", "s2", "s3")):
        share(engine, i, i * 1000, sharer, recipients=sinks)
        outcome(engine, i, i * 1000 + 10, delivered=2, claimed=2)
    # Three distinct sharers, three receipts, all claimed: both are sinks,
    # and every sharer that fed them feeds two.
    now = 2010
    assert [published(engine, "sink_feeder", s, now) for s in ("s1", "s2", "s3")] == [
        f"2@{T0 + MONTH}", f"2@{T0 + 1000 + MONTH}", f"2@{T0 + 2000 + MONTH}"]


def test_a_hub_feeding_a_few_sinks_among_many_is_not_flagged() -> None:
    engine = SignalEngine()
    friends = tuple(f"f{i}" for i in range(25))
    share(engine, 100, 0, "hub", recipients=friends)
    for i, sharer in enumerate(("hub", "s2", "s3")):
        share(engine, i, 1000 + i * 1000, sharer, recipients=("t1", "t2"))
        outcome(engine, i, 1000 + i * 1000 + 10, delivered=2, claimed=2)
    now = 3010
    # The hub feeds 2 sinks of 27 recipients (under a tenth): nothing.
    assert published(engine, "sink_feeder", "hub", now) is None
    assert published(engine, "sink_feeder", "s2", now) == f"2@{T0 + 2000 + MONTH}"


def test_a_popular_claimer_reached_by_unrelated_friends_makes_no_feeders() -> None:
    engine = SignalEngine()
    # Two heavy claimers, each reached by three friends who share nothing
    # else: both are sinks by their inflow alone, yet "a" reaches both and
    # nobody else feeds a second sink: no block, no feeder.
    for i, (sharer, target) in enumerate((("a", "p1"), ("b1", "p1"), ("b2", "p1"),
                                          ("a", "p2"), ("c1", "p2"), ("c2", "p2"))):
        share(engine, i, i * 1000, sharer, recipients=(target,))
        outcome(engine, i, i * 1000 + 10, delivered=1, claimed=1)
    assert published(engine, "sink_feeder", "a", 6000) is None
    # One other friend reaching both is chance: for "a", p1's other sharers
    # hold one feeder of a second sink (b1), under the block's two.
    share(engine, 6, 6000, "b1", recipients=("p2",))
    assert published(engine, "sink_feeder", "a", 6000) is None
    assert published(engine, "sink_feeder", "b1", 6000) is None
    # A third account feeding both (with "a" and "b1", a ring's block) makes
    # them count, for all three.
    share(engine, 7, 7000, "b2", recipients=("p2",))
    assert published(engine, "sink_feeder", "a", 7000) == f"2@{T0 + MONTH}"
    assert published(engine, "sink_feeder", "b1", 7000) == f"2@{T0 + 1000 + MONTH}"
    assert published(engine, "sink_feeder", "b2", 7000) == f"2@{T0 + 2000 + MONTH}"


def test_one_other_feeder_of_a_second_sink_is_a_block_only_when_configured() -> None:
    # The same two claimers and one friend reaching both, with a block of one.
    engine = SignalEngine(SignalConfig(sink_block_min=1))
    for i, (sharer, target) in enumerate((("a", "p1"), ("b1", "p1"), ("b2", "p1"),
                                          ("a", "p2"), ("c1", "p2"), ("c2", "p2"), ("b1", "p2"))):
        share(engine, i, i * 1000, sharer, recipients=(target,))
        outcome(engine, i, i * 1000 + 10, delivered=1, claimed=1)
    assert published(engine, "sink_feeder", "a", 6010) == f"2@{T0 + MONTH}"


def feed_a_popular_claimer(engine: SignalEngine) -> None:
    """A popular heavy claimer p1 ("a" and six friends who share nothing
    else); "a", "b" and "d" all reach p1 and a second heavy claimer p2 (with "c")."""
    for i, sharer in enumerate(("a", "f1", "f2", "f3", "f4", "f5", "f6")):
        share(engine, i, i * 1000, sharer, recipients=("p1",))
        outcome(engine, i, i * 1000 + 10, delivered=1, claimed=1)
    for i, (sharer, target) in enumerate((("b", "p1"), ("d", "p1"), ("a", "p2"), ("b", "p2"), ("d", "p2"),
                                          ("c", "p2")), start=7):
        share(engine, i, i * 1000, sharer, recipients=(target,))
        outcome(engine, i, i * 1000 + 10, delivered=1, claimed=1)


def test_a_popular_claimer_counts_only_when_its_block_is_a_fair_part_of_its_sharers() -> None:
    engine = SignalEngine()
    feed_a_popular_claimer(engine)
    now = 13_010
    # Seen from the second sink's side (fellow13), neither counts: p2's block
    # (b and d) meets only on p1, whose own sharers are its six friends and
    # p2's three, 3 of 9, under half: a real claimer, not the ring's.
    assert published(engine, "sink_feeder", "a", now) is None
    assert published(engine, "sink_feeder", "b", now) is None
    # Without that side: for "a", p2's other sharers are b, d and c, and b
    # and d feed two sinks: 2 of 3, a block. p1's are b, d and six friends:
    # 2 of 8, under a third, so p1 does not count. The same for "b" (p1: a,
    # d and six friends; p2: a, d and c).
    sided = SignalEngine(SignalConfig(block_share=0.0))
    feed_a_popular_claimer(sided)
    assert published(sided, "sink_feeder", "a", now) == f"1@{T0 + 9000 + MONTH}"
    assert published(sided, "sink_feeder", "b", now) == f"1@{T0 + 10_000 + MONTH}"
    # Without the part (any one other feeder of a second sink was enough), both feed two.
    loose = SignalEngine(SignalConfig(sink_block_share=0.0, block_share=0.0))
    feed_a_popular_claimer(loose)
    assert published(loose, "sink_feeder", "a", now) == f"2@{T0 + MONTH}"


def test_a_device_carries_the_values_of_a_bounded_number_of_users() -> None:
    engine = SignalEngine(replace(EACH_A_SITTING, flagged_users_per_device=1))
    for n, user in enumerate(("u1", "u2")):
        for k in range(3):
            writes = share(engine, 10 * n + k, 10 * n + k, user, device="d1")
    # u2's third share flags it, and u1's value leaves the device's hash.
    assert writes == [Write("risk:{d:d1}:sig", "c|u2", f"3@{T0 + 10 + 3 * DAY_MS}"),
                      *[Write("risk:{d:d1}:sig", f"{f}|u1", None) for f in "lfdc"]]


def test_engine_reads_stream_entries() -> None:
    engine = SignalEngine(EACH_A_SITTING)
    req = b'{"device_id":"d1","user_id":"u1","coupon_id":"c1","recipients":["r1"]}'
    for i in range(3):
        writes = engine.observe({"k": "decision", "id": f"x{i}", "t": str(T0 + i), "dec": "0", "rc": "",
                                 "req": req.decode()})
    assert writes == [Write("risk:{d:d1}:sig", "c|u1", f"3@{T0 + 3 * DAY_MS}")]
    assert engine.observe({"k": "challenge", "id": "x0", "t": "1", "passed": "1"}) == []
    assert engine.observe({"k": "outcome", "id": "unknown", "t": "1", "dl": "1", "op": "1", "cl": "0"}) == []


def test_coupon_repeat_counts_sittings_not_shares() -> None:
    engine = SignalEngine()
    hour = 3_600_000
    # Ten chats in one evening (a minute apart) are one sitting.
    for i in range(10):
        share(engine, i, i * 60_000, "fan", coupon="c1")
    assert published(engine, "coupon_repeat", "fan", 10 * 60_000) is None
    # A steady pusher: a share every 61 minutes is a sitting each; the third
    # reaches the floor (3), valid until the first leaves the 3-day window.
    for i in range(3):
        share(engine, 20 + i, i * (hour + 60_000), "pusher", coupon="c1")
    assert published(engine, "coupon_repeat", "pusher", 3 * hour) == f"3@{T0 + 3 * DAY_MS}"
    # Exactly an hour after the previous share is still the same sitting.
    share(engine, 30, 2 * (hour + 60_000) + hour, "pusher", coupon="c1")
    assert published(engine, "coupon_repeat", "pusher", 4 * hour) == f"3@{T0 + 3 * DAY_MS}"


def test_coupon_repeat_counts_sittings_in_event_time_whatever_the_arrival_order() -> None:
    # On Redis Cluster an entry of a quiet shard can arrive after later ones
    # of other shards: sittings are counted on the shares' own times. Shares
    # 35 minutes apart for three and a half hours are one sitting; arriving
    # in pairs swapped, each next one is 70 minutes after the last arrived.
    minute = 60_000
    times = [0, 70 * minute, 35 * minute, 140 * minute, 105 * minute, 210 * minute, 175 * minute]
    values = []
    for order in (sorted(times), times):
        signal = CouponRepeat(SignalConfig())
        readings = [signal.share(Share(f"x{n}", T0 + t, "fan", "dev-fan", "c1", (), True))
                    for n, t in enumerate(order)]
        values.append(readings[-1][0].value)
    assert values == [1, 1]
