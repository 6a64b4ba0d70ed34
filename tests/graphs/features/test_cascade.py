from __future__ import annotations

import numpy as np

from graphs.events.jsonl import read_events
from graphs.features.cascade import propagation_by_user, reconstruct_cascades, subtree_sums
from tests.graphs.helpers import HOUR, share


def clean_cascade() -> list[dict]:
    """a -> {b, c}; b -> {d, x}; d -> {e}; c never reshares; e reshares before it received (own root)."""
    return [
        share("a", "k", 0, ["b", "c"], claimed=1),
        share("b", "k", 1 * HOUR, ["d", "x"], claimed=2),
        share("b", "k", 1.5 * HOUR, ["y"], claimed=0),      # b's second share of k
        share("d", "k", 2 * HOUR, ["e"], claimed=1),
        share("z", "k", 0.5 * HOUR, ["d"], claimed=0),      # d heard from z first
        share("e", "k2", 3 * HOUR, ["a"], claimed=1),       # other coupon: separate cascade
        share("a", "k", 5 * HOUR, ["q"], claimed=1),        # a again, same pair
    ]


def test_parent_is_earliest_delivery_before_first_share() -> None:
    t = read_events(clean_cascade())
    cas = reconstruct_cascades(t)
    users = t.users[cas.user].tolist()
    parent = {users[i]: (users[p] if p >= 0 else None) for i, p in enumerate(cas.parent)
              if t.coupons[cas.coupon[i]] == "k"}
    assert parent == {"a": None, "b": "a", "z": None, "d": "z"}


def test_descendant_shares_and_claims_per_user() -> None:
    t = read_events(clean_cascade())
    prop = propagation_by_user(t)
    by = {u: (prop.desc_shares[i], prop.desc_claims[i]) for i, u in enumerate(t.users)}
    # a: b's two shares (claims 2 + 0); d hangs under z, not under b
    assert by["a"] == (2.0, 2.0)
    assert by["b"] == (0.0, 0.0)
    assert by["z"] == (1.0, 1.0)
    assert by["d"] == (0.0, 0.0)
    assert prop.secondary[t.users.tolist().index("a")] == 4.0
    assert prop.direct_claims[t.users.tolist().index("a")] == 2.0


def test_share_before_receipt_starts_its_own_cascade() -> None:
    t = read_events([share("b", "k", 0, ["x"]), share("a", "k", 10, ["b"])])
    assert reconstruct_cascades(t).parent.tolist() == [-1, -1]


def test_subtree_sums_on_a_long_chain() -> None:
    n = 2000
    parent = np.arange(-1, n - 1)
    total = subtree_sums(parent, np.ones(n))
    assert total[0] == n and total[-1] == 1 and total[1000] == n - 1000
