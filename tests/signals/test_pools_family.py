"""A family phone whose members' own phones are shared with housemates is
no ``device_pool`` (pools.py: a pool needs ``pool_linked`` accounts sharing
from two of its phones), on crafted share streams."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_board import MONTH, T0
from tests.signals.test_engine import share
from tests.signals.test_pools import pool_flags, replay

# A family of four on one phone ("home"); m1 and m2 also share from their
# own phones, each used by a housemate too (x1, x2): three shared phones and
# six accounts, as many as a small pool, but only m1 and m2 link two phones.
FAMILY = [("h", "home"), ("m1", "home"), ("m2", "home"), ("m3", "home"),
          ("m1", "own-m1"), ("x1", "own-m1"), ("m2", "own-m2"), ("x2", "own-m2"),
          ("h", "home"), ("m3", "home")]


def test_a_family_phone_with_two_members_on_shared_own_phones_is_no_pool() -> None:
    engine = SignalEngine()
    replay(engine, FAMILY)
    accounts, devices, shared = engine.pools.pool("home", T0 + 90)
    assert (accounts, devices, shared) == ({"h", "m1", "m2", "m3", "x1", "x2"}, {"home", "own-m1", "own-m2"}, 3)
    assert engine.pools.linked(accounts, devices, T0 + 90) == 2
    assert pool_flags(engine) == {}


def test_the_same_family_is_a_pool_when_two_linked_accounts_are_enough() -> None:
    engine = SignalEngine(replace(SignalConfig(), pool_linked=2))
    replay(engine, FAMILY)
    # Flagged at x2's share (t=70): two rounds from x2's phone reach the
    # three shared phones (pool_rounds; one round held two until h's next
    # share from the family phone at t=80), and not re-published later
    # (same value, fresh enough).
    until = T0 + 70 + MONTH
    assert pool_flags(engine) == {**{f"p|{d}": f"6@{until}" for d in ("home", "own-m1", "own-m2")},
                                  **{f"q|{u}": f"6@{until}" for u in ("h", "m1", "m2", "m3", "x1", "x2")}}


# A family of four on one phone; m1, m2 and m3 also share from their own
# phones, each used by a housemate too: three shared phones, seven accounts
# and three of them (m1..m3) linking two phones, a pool's shape by count.
LINKED_FAMILY = [("h", "home"), ("m1", "home"), ("m2", "home"), ("m3", "home"),
                 ("m1", "own-m1"), ("x1", "own-m1"), ("m2", "own-m2"), ("x2", "own-m2"),
                 ("m3", "own-m3"), ("x3", "own-m3")]


def _family_with_friends(engine: SignalEngine, members: tuple[str, ...], friends: int) -> None:
    """Each member first hears from ``friends`` accounts of its own, outside
    the family; then the family shares (``LINKED_FAMILY``, then h again)."""
    n = 0
    for member in members:
        for f in range(friends):
            share(engine, n, n * 10, f"friend-{member}-{f}", recipients=(member,))
            n += 1
    for user, device in [*LINKED_FAMILY, ("h", "home")]:
        share(engine, n, 1000 + n * 10, user, device)
        n += 1


def test_family_members_with_their_own_friends_do_not_link_a_pool() -> None:
    engine = SignalEngine()
    # Seven friends each (the pool's seven accounts): none of m1..m3 links it.
    _family_with_friends(engine, ("m1", "m2", "m3"), 7)
    accounts, devices, shared = engine.pools.pool("home", T0 + 2000)
    assert (len(accounts), devices, shared) == (7, {"home", "own-m1", "own-m2", "own-m3"}, 4)
    assert engine.pools.linked(accounts, devices, T0 + 2000) == 0
    assert pool_flags(engine) == {}


def test_a_member_with_fewer_outside_friends_than_the_pool_still_links_it() -> None:
    # Six friends each, one fewer than the pool's seven accounts: all three
    # link it, and the family is taken for a pool (the limit of the rule).
    engine = SignalEngine()
    _family_with_friends(engine, ("m1", "m2", "m3"), 6)
    accounts, devices, _ = engine.pools.pool("home", T0 + 2000)
    assert engine.pools.linked(accounts, devices, T0 + 2000) == 3
    assert {k for k in pool_flags(engine) if k.startswith("p|")} == {"p|home", "p|own-m1", "p|own-m2", "p|own-m3"}


def test_without_the_own_friends_rule_the_family_is_a_pool() -> None:
    engine = SignalEngine(replace(SignalConfig(), pool_own_friends=False))
    _family_with_friends(engine, ("m1", "m2", "m3"), 7)
    accounts, devices, _ = engine.pools.pool("home", T0 + 2000)
    assert engine.pools.linked(accounts, devices, T0 + 2000) == 3
    assert {k for k in pool_flags(engine) if k.startswith("p|")} == {"p|home", "p|own-m1", "p|own-m2", "p|own-m3"}
