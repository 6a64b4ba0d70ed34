"""A sink's fresh sharers that reached it before it was one are feeders too
(recipients.py, ``_feeders``).

Traced on a rotating ring (hard profile, 3000 users, seed 374): its first
sink was made by three fresh members' shares, and those members went on
with cover shares to real users for days, allowed, because a feeder was
flagged only when its share named an already published sink. Each is now
published once, when the sink is known, for ``feeder_ms`` from then.
"""

from __future__ import annotations

from riskservice.signals.catalog import DAY_MS
from tests.signals.test_board import T0, Stream

DAY3 = 3 * DAY_MS


def sink_of_three(s: Stream, t: int = DAY3, begin: bool = True) -> int:
    """Three fresh accounts share to the hoarder and a real user each; the
    hoarder claims. Returns the time of the report that makes it a sink."""
    if begin:
        s.share(0, "old", ("x",))  # the consumer's history begins
    for i in range(3):
        s.share(t + i * 1000, f"feeder-{i}", ("hoarder", f"friend-{i}"), claimed=1, coupon=f"c{i}")
    return t + 2001


def test_the_sharers_that_made_a_sink_are_feeders_from_when_it_is_known() -> None:
    s = Stream()
    known = sink_of_three(s)
    assert s.flag("r", "hoarder", known) is not None
    for i in range(3):
        assert s.flag("s", f"feeder-{i}", known) == (3, T0 + known + DAY3)
    # ... for three days, as a feeder judged at its share.
    assert s.flag("s", "feeder-0", known + DAY3) is None


def test_a_feeder_is_published_once_per_sink_not_at_every_receipt() -> None:
    # A fourth feeder a day later raises the sink's value; the first three
    # keep their flag (value and end): a later receipt does not prolong it.
    s = Stream()
    known = sink_of_three(s)
    s.share(known + DAY_MS, "feeder-3", ("hoarder",), claimed=1, coupon="c3")
    assert s.flag("r", "hoarder", known + DAY_MS + 10)[0] == 4
    assert s.flag("s", "feeder-0", known + DAY_MS + 10) == (3, T0 + known + DAY3)
    assert s.flag("s", "feeder-3", known + DAY_MS + 10) == (4, T0 + known + DAY_MS + DAY3)


def test_a_sharer_that_was_shared_to_is_no_feeder() -> None:
    # An established sharer (shared to before it reached the claimer) is no
    # fresh account: it is not evidence, and is not flagged with the others.
    s = Stream()
    s.share(0, "old", ("x",))
    s.share(DAY3 - 20_000, "old", ("known",), coupon="o")
    s.share(DAY3 - 10_000, "known", ("hoarder",), claimed=1, coupon="k")
    known = sink_of_three(s, begin=False)
    assert s.flag("r", "hoarder", known + 5) is None  # three fresh, less one heard
    s.share(known + 10, "feeder-3", ("hoarder",), claimed=1, coupon="c3")  # makes up for `known`
    assert s.flag("r", "hoarder", known + 20) is not None
    assert s.flag("s", "known", known + 20) is None
    assert s.flag("s", "feeder-0", known + 20) is not None
