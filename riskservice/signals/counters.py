"""Exact, bounded, windowed state for the signal engine.

Every structure keeps at most ``cap`` entries and forgets what is older than
its window, so the memory per tracked entity is bounded whatever the
traffic: when full, the entry touched longest ago goes first (an LRU), which
is also the one a window would drop next. Times are event times in ms, given
by the caller (the stream's, or the backtest's), never the wall clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A map of the ``cap`` most recently touched keys, each kept ``window_ms``
    after its last touch.

    >>> r: Recent[str, int] = Recent(cap=2, window_ms=1000)
    >>> r.put("a", 1, now=0); r.put("b", 2, now=10); r.put("c", 3, now=20)
    >>> sorted(r.keys(now=20)), r.get("a", now=20)
    (['b', 'c'], None)
    >>> r.get("b", now=1011) is None
    True
    """

    __slots__ = ("_items", "cap", "window_ms")

    def __init__(self, cap: int, window_ms: int) -> None:
        self.cap = cap
        self.window_ms = window_ms
        # key -> (last touch ms, value), least recently touched first
        self._items: OrderedDict[K, tuple[int, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def expire(self, now: int) -> None:
        """Forget what the window has left behind (oldest first, so this stops early)."""
        items, window = self._items, self.window_ms
        stale = []
        for key, (t, _) in items.items():
            if now - t < window:
                break
            stale.append(key)
        for key in stale:
            del items[key]

    def get(self, key: K, now: int) -> V | None:
        """The value of ``key`` if it is still inside the window (not a touch)."""
        hit = self._items.get(key)
        if hit is None or now - hit[0] >= self.window_ms:
            return None
        return hit[1]

    def put(self, key: K, value: V, now: int) -> None:
        """Set and touch ``key``; the least recently touched key goes when full."""
        items = self._items
        if key in items:
            items.move_to_end(key)
        items[key] = (now, value)
        if len(items) > self.cap:
            items.popitem(last=False)
        # (expire() inlined for its usual case: the oldest entry is still in the window)
        for _, (t, _) in items.items():
            if now - t >= self.window_ms:
                self.expire(now)
            return

    def update(self, key: K, now: int, change: Callable[[V | None], V]) -> V:
        """Set ``key`` to ``change(current or None)`` and touch it; returns the new value."""
        value = change(self.get(key, now))
        self.put(key, value, now)
        return value

    def pop(self, key: K) -> V | None:
        hit = self._items.pop(key, None)
        return None if hit is None else hit[1]

    def entries(self, now: int) -> Iterator[tuple[K, int, V]]:
        """(key, last touch ms, value) inside the window, least recently touched first."""
        return ((k, t, v) for k, (t, v) in self._items.items() if now - t < self.window_ms)

    def keys(self, now: int) -> list[K]:
        """Keys inside the window, least recently touched first."""
        return [k for k, (t, _) in self._items.items() if now - t < self.window_ms]

    def items(self, now: int) -> Iterator[tuple[K, V]]:
        """(key, value) inside the window, least recently touched first."""
        return ((k, v) for k, (t, v) in self._items.items() if now - t < self.window_ms)


class Entities(Generic[K, V]):
    """Per-entity state (a device's users, a sharer's recipients, ...): at most
    ``cap`` entities, each made by ``make`` on first sight and dropped when
    untouched for ``window_ms`` or when the least recently touched of a full
    map.

    >>> e: Entities[str, list[int]] = Entities(cap=1, window_ms=10, make=list)
    >>> e.touch("a", 0).append(1); e.touch("b", 5).append(2)
    >>> e.peek("a", 5), e.peek("b", 5)
    (None, [2])
    """

    __slots__ = ("_map", "make", "peek")

    def __init__(self, cap: int, window_ms: int, make: Callable[[], V]) -> None:
        self._map: Recent[K, V] = Recent(cap, window_ms)
        self.make = make
        # peek(key, now): the state of ``key`` without touching it (None if
        # unknown or expired). Bound straight to the map's get: the engine
        # calls it some thirty times per stream entry.
        self.peek: Callable[[K, int], V | None] = self._map.get

    def __len__(self) -> int:
        return len(self._map)

    def touch(self, key: K, now: int) -> V:
        """The state of ``key``, made if new, marked as used now."""
        state = self._map.get(key, now)
        if state is None:
            state = self.make()
        self._map.put(key, state, now)
        return state
