"""A fresh sharer whose recipient passes its coupon on loses its fresh-burst
flag: its own cascade says it is a real user (fresh_bursts.py)."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.board import BOARD_KEY
from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine, Write
from riskservice.signals.share import Share

T0 = 1_760_000_000_000
MONTH = 30 * DAY_MS
DAY3 = 3 * DAY_MS
HOUR = 3_600_000
FLAG = (4, T0 + DAY3 + 180_000 + MONTH)  # the burst's value and until, for every member


class Stream:
    """Shares into one engine, with numbered decision ids."""

    def __init__(self, config: SignalConfig | None = None) -> None:
        # (flags published at the burst: fresh_burst_next_share, which holds
        # them to the member's next share, is tested in test_fresh14_next_share.py)
        self.engine = SignalEngine(replace(config or SignalConfig(), fresh_burst_next_share=False))
        self.n = 0
        self.share(0, "old", ("x",), coupon="c0")  # the consumer's history begins

    def share(self, t: int, user: str, recipients: tuple[str, ...], coupon: str = "launch",
              allowed: bool = True) -> list[Write]:
        self.n += 1
        return self.engine.share(Share(f"x{self.n}", T0 + t, user, f"dev-{user}", coupon, recipients, allowed))

    def flags(self, users: list[str], t: int) -> dict[str, tuple[int, int] | None]:
        return {u: self.engine.board.get("g", u, T0 + t) for u in users}


def per_sharer() -> Stream:
    """The sharer's own cascade alone: a burst re-judged without its passers
    (``fresh_burst_passed_on``) drops a four-member burst's every flag at its
    first pass-on (tests/signals/test_org10_fresh_rejudge.py)."""
    return Stream(replace(SignalConfig(), fresh_burst_passed_on=False))


def g_writes(writes: list[Write]) -> list[tuple[str, str | None]]:
    return [(w.field, w.value) for w in writes if w.key == BOARD_KEY and w.field.startswith("g|")]


MEMBERS = [f"member-{i}" for i in range(4)]


def burst(s: Stream, allowed: bool = True, recipients: tuple[str, ...] = ()) -> None:
    """Four fresh accounts share the coupon within four minutes, each to its
    own friend (and to ``recipients``): a fresh burst, all four flagged."""
    writes: list[Write] = []
    for i in range(4):
        writes += s.share(DAY3 + i * 60_000, f"member-{i}", (f"friend-{i}", *recipients), allowed=allowed)
    assert g_writes(writes) == [(f"g|member-{i}", f"{FLAG[0]}@{FLAG[1]}") for i in range(4)]


def test_a_sharer_whose_friend_passes_the_coupon_on_loses_its_flag() -> None:
    s = per_sharer()
    burst(s)
    # A friend sharing another coupon passes nothing on.
    assert g_writes(s.share(DAY3 + HOUR, "friend-0", ("y",), coupon="c5")) == []
    # Sharing this one, it withdraws the flag of the member it heard it from, and only that one.
    assert g_writes(s.share(DAY3 + 2 * HOUR, "friend-0", ("y",))) == [("g|member-0", None)]
    assert s.flags(MEMBERS, DAY3 + 2 * HOUR) == {"member-0": None, "member-1": FLAG, "member-2": FLAG,
                                                 "member-3": FLAG}
    # Even when its share is refused (an attempt is evidence), and whatever it names.
    assert g_writes(s.share(DAY3 + 3 * HOUR, "friend-1", (), allowed=False)) == [("g|member-1", None)]
    # A member sharing the coupon again to its friend is no cascade of its own.
    s.share(DAY3 + 3 * HOUR, "member-2", ("friend-2",))
    assert s.flags(MEMBERS, DAY3 + 3 * HOUR + 1)["member-2"] == FLAG


def test_only_a_fresh_sharers_allowed_share_makes_an_audience() -> None:
    # A refused share reached nobody: its recipients sharing the coupon pass nothing on.
    s = Stream()
    burst(s, allowed=False)
    assert g_writes(s.share(DAY3 + HOUR, "friend-0", ("y",))) == []
    assert s.flags(MEMBERS, DAY3 + HOUR)["member-0"] == FLAG
    # A sharer that is not fresh has no audience ("old" was seen when the
    # consumer's history began): its friend passing the coupon on clears nobody.
    s = Stream()
    s.share(DAY3 - HOUR, "old", ("pal",))
    burst(s, recipients=())
    s.share(DAY3 + HOUR, "pal", ("y",))
    assert s.flags(MEMBERS, DAY3 + HOUR) == dict.fromkeys(MEMBERS, FLAG)


def test_the_first_fresh_sharer_a_recipient_heard_from_is_the_one_cleared() -> None:
    s = per_sharer()
    # All four members also name "common"; it heard the coupon from member-0 first.
    burst(s, recipients=("common",))
    assert g_writes(s.share(DAY3 + HOUR, "common", ("y",))) == [("g|member-0", None)]
    assert s.flags(MEMBERS, DAY3 + HOUR) == {"member-0": None, "member-1": FLAG, "member-2": FLAG,
                                             "member-3": FLAG}


def test_a_group_inside_a_launchs_burst_keeps_its_flags() -> None:
    s = Stream()
    # A coupon's first real sharers and a group's accounts share it within
    # the same minutes: one burst of eight fresh accounts.
    writes: list[Write] = []
    for i in range(4):
        writes += s.share(DAY3 + i * 1000, f"real-{i}", (f"friend-{i}",))
        writes += s.share(DAY3 + i * 1000 + 500, f"group-{i}", (f"target-{i}",))
    # (flagged from the fourth fresh account, and again as the burst's value grows to 8)
    assert s.flags([f"real-{i}" for i in range(4)] + [f"group-{i}" for i in range(4)], DAY3 + 4000) == {
        **{f"real-{i}": (8, T0 + DAY3 + 3500 + MONTH) for i in range(4)},
        **{f"group-{i}": (8, T0 + DAY3 + 3500 + MONTH) for i in range(4)}}
    assert len([v for _, v in g_writes(writes) if v is not None]) == 4 + 5 + 6 + 7 + 8
    # The real sharers' friends pass the coupon on; the group's targets do not.
    for i in range(4):
        s.share(DAY3 + 2 * HOUR + i, f"friend-{i}", ("y",))
    held = s.flags([f"real-{i}" for i in range(4)] + [f"group-{i}" for i in range(4)], DAY3 + 3 * HOUR)
    assert [u for u, flag in held.items() if flag is not None] == [f"group-{i}" for i in range(4)]


def test_the_audience_is_kept_a_day_and_bounded() -> None:
    s = Stream()
    burst(s)
    audience = s.engine.bursts.audience.peek("launch", T0 + DAY3 + 180_000)
    assert audience is not None and list(audience.items(T0 + DAY3 + 180_000)) == [
        (f"friend-{i}", f"member-{i}") for i in range(4)]
    # A day after the coupon's last fresh share nobody is left to pass it on.
    assert g_writes(s.share(DAY3 + 180_000 + DAY_MS, "friend-3", ("y",))) == []
    assert s.flags(MEMBERS, DAY3 + 180_000 + DAY_MS)["member-3"] == FLAG
    # One fresh share naming more than the cap keeps the last `launch_audience`.
    s = Stream()
    cap = s.engine.config.launch_audience
    s.share(DAY3, "big", tuple(f"r{i}" for i in range(cap + 10)))
    audience = s.engine.bursts.audience.peek("launch", T0 + DAY3)
    assert audience is not None and len(audience) == cap
    assert audience.get("r9", T0 + DAY3) is None and audience.get("r10", T0 + DAY3) == "big"
