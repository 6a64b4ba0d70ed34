"""A chat group is no closed circle (circles.py, ``circle_no_posters``): a
circle's sharers must not have posted to a group (a share naming more than
``circle_max_recipients``) in the window."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_blocks import one_target_a_share, ring_flags
from tests.signals.test_board import MONTH, T0, Stream

GROUP = tuple(f"member{i}" for i in range(12))


def stream(no_posters: bool = True) -> Stream:
    s = Stream()
    s.engine = SignalEngine(replace(SignalConfig(), circle_no_posters=no_posters))
    return s


def test_a_member_sharing_to_fellow_members_after_the_admins_posts_is_no_circle() -> None:
    # Two admins post to the same group of twelve (group posts: not judged as
    # circles), then a member shares to three fellow members: each admin
    # reached all three, and nobody outside the group shares to any of them.
    # Without the condition, a closed circle of the admins and the member.
    for no_posters, expected in ((True, None), (False, (3, T0 + 20 + MONTH))):
        s = stream(no_posters)
        s.share(0, "admin1", GROUP, coupon="c0")
        s.share(10, "admin2", GROUP, coupon="c1")
        s.share(20, "member0", ("member1", "member2", "member3"), coupon="c2")
        assert s.flag("m", "member0", 30) == expected
        assert s.flag("m", "admin1", 30) == expected


def test_a_member_of_the_circle_that_posted_to_a_group_breaks_it() -> None:
    # The circle of test_blocks (a, b and c naming the same three accounts),
    # when b has posted to a group in the window: no circle. A month later
    # (the post has left the window) the same three shares make one.
    s = stream()
    s.share(0, "b", GROUP, coupon="g")
    for i, member in enumerate("abc"):
        s.share(10 + i * 10, member, ("t1", "t2", "t3"), coupon=f"c{i}")
    assert ring_flags(s) == {}
    later = MONTH + 100
    for i, member in enumerate("abc"):
        s.share(later + i * 10, member, ("t1", "t2", "t3"), coupon=f"d{i}")
    assert s.flag("m", "c", later + 30) == (3, T0 + later + 20 + MONTH)


def test_a_group_post_in_the_window_breaks_a_circle_across_shares() -> None:
    # test_blocks' ring naming one target a share, one of whose members (b)
    # posted to a group first: no circle across d's shares.
    s = stream()
    s.share(0, "b", GROUP, coupon="g")
    one_target_a_share(s, 10)
    s.share(100, "d", ("t1",), coupon="d1")
    s.share(110, "d", ("t2",), coupon="d2")
    assert ring_flags(s) == {}
