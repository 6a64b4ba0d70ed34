"""A coupon's launch is no fresh burst: when two of its fresh sharers' friends
pass the coupon on, the flags its bursts gave are withdrawn (fresh_bursts.py)."""

from __future__ import annotations

from riskservice.signals.board import BOARD_KEY
from riskservice.signals.catalog import DAY_MS
from riskservice.signals.engine import SignalEngine, Write
from riskservice.signals.share import Share

T0 = 1_760_000_000_000
MONTH = 30 * DAY_MS
DAY3 = 3 * DAY_MS


class Stream:
    """Shares into one engine, with numbered decision ids."""

    def __init__(self) -> None:
        self.engine = SignalEngine()
        self.n = 0
        self.share(0, "old", ("x",), coupon="c0")  # the consumer's history begins

    def share(self, t: int, user: str, recipients: tuple[str, ...], coupon: str = "launch",
              allowed: bool = True) -> list[Write]:
        self.n += 1
        return self.engine.share(Share(f"x{self.n}", T0 + t, user, f"dev-{user}", coupon, recipients, allowed))

    def burst_flags(self, t: int) -> dict[str, tuple[int, int] | None]:
        return {f"member-{i}": self.engine.board.get("g", f"member-{i}", T0 + t) for i in range(4)}


def g_writes(writes: list[Write]) -> list[tuple[str, str | None]]:
    return [(w.field, w.value) for w in writes if w.key == BOARD_KEY and w.field.startswith("g|")]


def burst(s: Stream, allowed: bool = True) -> None:
    """Four fresh accounts share the coupon to a friend each within four minutes: a fresh burst."""
    writes: list[Write] = []
    for i in range(4):
        writes += s.share(DAY3 + i * 60_000, f"member-{i}", (f"friend-{i}",), allowed=allowed)
    assert g_writes(writes) == [(f"g|member-{i}", f"4@{T0 + DAY3 + 180_000 + MONTH}") for i in range(4)]


def test_a_coupon_passed_on_by_two_fresh_sharers_friends_is_a_launch() -> None:
    s = Stream()
    burst(s)
    # One friend passing the coupon on is not enough: a group's target may
    # have heard of the coupon elsewhere.
    assert g_writes(s.share(DAY3 + 2 * 3_600_000, "friend-0", ("y",))) == []
    assert s.burst_flags(DAY3 + 2 * 3_600_000) == {f"member-{i}": (4, T0 + DAY3 + 180_000 + MONTH)
                                                   for i in range(4)}
    # A second member's friend passing it on: a cascade, the coupon's launch.
    # Every flag its burst gave goes.
    writes = s.share(DAY3 + 3 * 3_600_000, "friend-1", ("z",))
    assert g_writes(writes) == [(f"g|member-{i}", None) for i in range(4)]
    assert s.burst_flags(DAY3 + 3 * 3_600_000) == dict.fromkeys(s.burst_flags(0))
    # For the rest of the day its bursts flag nobody: four more fresh sharers.
    writes = []
    for i in range(4):
        writes += s.share(DAY3 + 4 * 3_600_000 + i * 1000, f"late-{i}", (f"pal-{i}",))
    assert g_writes(writes) == []
    # Another coupon's burst is judged as before.
    writes = []
    for i in range(4):
        writes += s.share(DAY3 + 4 * 3_600_000 + i * 1000, f"other-{i}", (f"mate-{i}",), coupon="c9")
    assert [field for field, _ in g_writes(writes)] == [f"g|other-{i}" for i in range(4)]


def test_passing_on_counts_only_from_a_fresh_sharers_allowed_share_and_the_same_coupon() -> None:
    s = Stream()
    burst(s)
    # The members' friends sharing another coupon pass nothing on.
    for i in range(4):
        s.share(DAY3 + 3_600_000 + i, f"friend-{i}", ("y",), coupon="c5")
    # An established account's friends passing the coupon on are no launch of
    # the fresh accounts: "old" received nothing, but first shared three days ago.
    s.share(DAY3 + 3_600_000 + 10, "old", ("buddy-0", "buddy-1"))
    s.share(DAY3 + 3_600_000 + 20, "buddy-0", ("y",))
    assert g_writes(s.share(DAY3 + 3_600_000 + 30, "buddy-1", ("y",))) == []
    # Nor is the same friend passing it on twice: one member.
    s.share(DAY3 + 3_600_000 + 40, "friend-0", ("y",))
    assert g_writes(s.share(DAY3 + 3_600_000 + 50, "friend-0", ("w",))) == []
    assert s.burst_flags(DAY3 + 3_600_000 + 60)["member-3"] == (4, T0 + DAY3 + 180_000 + MONTH)

    # A refused share reached nobody: its recipients sharing the coupon pass nothing on.
    s = Stream()
    burst(s, allowed=False)
    s.share(DAY3 + 3_600_000, "friend-0", ("y",))
    assert g_writes(s.share(DAY3 + 3_600_000 + 1, "friend-1", ("y",))) == []
    assert s.burst_flags(DAY3 + 3_600_000 + 2)["member-0"] == (4, T0 + DAY3 + 180_000 + MONTH)


def test_the_audience_is_kept_a_day_and_bounded() -> None:
    s = Stream()
    burst(s)
    bursts = s.engine.bursts
    # Four friends heard the coupon from fresh sharers.
    assert len(bursts.audience.peek("launch", T0 + DAY3 + 180_000) or ()) == 4
    # A day after the last fresh share, nobody is left to pass it on.
    s.share(DAY3 + 180_000 + DAY_MS, "friend-0", ("y",))
    assert g_writes(s.share(DAY3 + 180_001 + DAY_MS, "friend-1", ("y",))) == []
    assert bursts.audience.peek("launch", T0 + DAY3 + 180_001 + DAY_MS) is None
    # One fresh share naming more than the cap keeps the last `launch_audience`.
    s = Stream()
    cap = s.engine.config.launch_audience
    s.share(DAY3, "big", tuple(f"r{i}" for i in range(cap + 10)))
    audience = s.engine.bursts.audience.peek("launch", T0 + DAY3)
    assert audience is not None and len(audience) == cap
    assert audience.get("r9", T0 + DAY3) is None and audience.get("r10", T0 + DAY3) == "big"
