"""device_pool reaches a young pool in two rounds (the devices of the
sharing phone's accounts and their accounts, then the devices of those
accounts and theirs): a rotating ring's first shares link its phones only
loosely, and one round from the sharing phone sees too little."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import SignalConfig
from riskservice.signals.engine import SignalEngine
from tests.signals.test_engine import share
from tests.signals.test_pools import pool_flags

# p1 is used by a, b and f; p2 by a, c and f; p3 by b and d. From p3 one
# round reaches p1 and p3 only (two shared phones, four accounts); the second
# reaches p2 through a and f: three shared phones, five accounts, and a, b
# and f each on two of them.
YOUNG = [("a", "p1"), ("b", "p1"), ("a", "p2"), ("c", "p2"), ("f", "p2"), ("b", "p3"), ("f", "p1"),
         ("d", "p3")]


def replay(rounds: int) -> SignalEngine:
    engine = SignalEngine(replace(SignalConfig(), pool_rounds=rounds))
    for n, (user, device) in enumerate(YOUNG):
        share(engine, n, n * 10, user, device)
    return engine


def test_one_round_misses_the_young_pool() -> None:
    assert pool_flags(replay(1)) == {}


def test_two_rounds_find_it() -> None:
    flags = pool_flags(replay(2))
    assert {k for k in flags if k.startswith("q|")} == {f"q|{u}" for u in "abcdf"}
    assert {k for k in flags if k.startswith("p|")} == {"p|p1", "p|p2", "p|p3"}


def test_two_rounds_are_the_default() -> None:
    assert SignalConfig().pool_rounds == 2
