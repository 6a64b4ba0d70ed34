"""Accounts rotating over a pool of shared devices (device_pool, pools.py),
on crafted share streams."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.board import BOARD_KEY
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_board import MONTH, T0
from tests.signals.test_engine import share

# A ring's accounts a..f over three phones, each phone used by two or three
# of them, each account on one or two: (account, phone) in time order.
RING = [("a", "p1"), ("b", "p1"), ("b", "p2"), ("c", "p2"), ("c", "p3"), ("d", "p3"), ("d", "p1"),
        ("e", "p2"), ("f", "p3")]


def pool_flags(engine: SignalEngine) -> dict[str, str]:
    return {k: f"{v}@{u}" for k, (v, u) in engine.board.entries.items() if k[0] in "pq"}


def replay(engine: SignalEngine, shares: list[tuple[str, str]], upto: int | None = None) -> None:
    for n, (user, device) in enumerate(shares[:upto]):
        share(engine, n, n * 10, user, device)


def test_accounts_rotating_over_three_shared_phones_are_a_pool() -> None:
    engine = SignalEngine()
    # Through d's share from p1 the pool of p1 reaches three shared phones but
    # four accounts: under the floor (5).
    replay(engine, RING, 7)
    assert pool_flags(engine) == {}
    # e's share from p2: its pool is p1, p2 and p3 (the phones of b, c and e)
    # and their five accounts; every phone and account flagged.
    writes = share(engine, 7, 70, "e", "p2")
    # All eight flags with one version write (the workers re-read the board once).
    assert [w.field for w in writes if w.key == BOARD_KEY].count("_v") == 1
    until = T0 + 70 + MONTH
    assert pool_flags(engine) == {**{f"p|p{i}": f"5@{until}" for i in (1, 2, 3)},
                                  **{f"q|{u}": f"5@{until}" for u in "abcde"}}
    # f's share from p3 grows it to six: all re-published with the new value.
    share(engine, 8, 80, "f", "p3")
    until = T0 + 80 + MONTH
    assert pool_flags(engine) == {**{f"p|p{i}": f"6@{until}" for i in (1, 2, 3)},
                                  **{f"q|{u}": f"6@{until}" for u in "abcdef"}}
    # A pool's account has no standing for the fan-out waiver.
    assert engine._flagged("a", T0 + 90)


def test_families_sharing_a_member_are_no_pool() -> None:
    engine = SignalEngine()
    # Two family phones (four accounts each), a member in both families, and
    # everyone's own phone besides: seven accounts, but two shared phones.
    family = [("h", "home"), ("m1", "home"), ("m2", "home"), ("m3", "home"),
              ("m1", "gran"), ("g1", "gran"), ("g2", "gran"), ("g3", "gran")]
    own = [(u, f"own-{u}") for u in ("h", "m1", "m2", "m3", "g1", "g2", "g3")]
    replay(engine, family + own + family)
    assert pool_flags(engine) == {}
    assert engine.pools.pool("home", T0 + 300)[2] == 2
    assert len(engine.pools.pool("home", T0 + 300)[0]) == 7


def test_a_pool_is_counted_up_to_its_cap_and_forgotten_after_the_window() -> None:
    engine = SignalEngine(replace(SignalConfig(), pool_cap=5))
    replay(engine, RING)
    # At f's share the pool of p3 has six accounts, counted up to five (b, c
    # and e of p2, the first phone of its first account c, then d and f of
    # p3): f joins the flagged with the same value, the others keep theirs.
    until = T0 + 70 + MONTH
    assert pool_flags(engine) == {**{f"p|p{i}": f"5@{until}" for i in (1, 2, 3)},
                                  **{f"q|{u}": f"5@{until}" for u in "abcde"}, "q|f": f"5@{T0 + 80 + MONTH}"}
    assert engine.pools.pool("p3", T0 + 80) == ({"b", "c", "d", "e", "f"}, {"p1", "p2", "p3"}, 3)
    # A month after the last share the phones' accounts have left the window.
    assert engine.pools.pool("p3", T0 + 80 + MONTH) == (set(), set(), 0)
    assert engine.board.get("q", "a", T0 + 70 + MONTH) is None
