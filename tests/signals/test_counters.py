"""Bounded, windowed state of the signal engine."""

from __future__ import annotations

from riskservice.signals.counters import Entities, Recent


def test_recent_keeps_the_most_recently_touched_within_its_window() -> None:
    r: Recent[str, int] = Recent(cap=3, window_ms=100)
    for i, key in enumerate("abcd"):
        r.put(key, i, now=i * 10)
    # "a" went when "d" came (cap 3), the others are inside the window.
    assert list(r.items(now=30)) == [("b", 1), ("c", 2), ("d", 3)]
    r.put("b", 9, now=40)  # a touch moves it last
    assert r.keys(now=40) == ["c", "d", "b"]
    # 100 ms after its touch a key is out of the window, and dropped on the next put.
    assert r.get("c", now=120) is None and r.get("d", now=129) == 3
    r.put("e", 5, now=131)
    assert len(r) == 2 and r.keys(now=131) == ["b", "e"]


def test_recent_update_and_pop() -> None:
    r: Recent[str, int] = Recent(cap=2, window_ms=50)
    assert r.update("a", 0, lambda v: (v or 0) + 1) == 1
    assert r.update("a", 10, lambda v: (v or 0) + 1) == 2
    # Expired values start again from nothing.
    assert r.update("a", 70, lambda v: (v or 0) + 1) == 1
    assert r.pop("a") == 1 and r.pop("a") is None


def test_entities_are_bounded_and_made_on_first_sight() -> None:
    e: Entities[str, list[int]] = Entities(cap=2, window_ms=1000, make=list)
    e.touch("a", 0).append(1)
    e.touch("b", 1).append(2)
    e.touch("a", 2).append(3)
    e.touch("c", 3)  # "b" is the least recently touched
    assert (e.peek("a", 3), e.peek("b", 3), e.peek("c", 3)) == ([1, 3], None, [])
    assert e.peek("a", 1002) is None and len(e) == 2
