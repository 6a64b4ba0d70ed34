"""Closed groups (a ring no outside share enters) and a dense block's closed reach."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from graphs.scorers.closed import closed_groups
from graphs.scorers.dense import find_blocks
from graphs.scorers.rows import score_events
from tests.graphs.helpers import HOUR, background, share


def ring_events(size: int = 6, step: int = 3) -> list[dict[str, Any]]:
    """A ring: each member shares to the next ``step`` members, and to two ordinary users as cover."""
    out = []
    for i in range(size):
        mates = [f"ring{(i + d) % size}" for d in range(1, step + 1)]
        for k, m in enumerate(mates):  # one share per mate, hours apart: no lockstep, no burst
            out.append(share(f"ring{i}", f"bg{k}", (7 * i + 2 * k) * HOUR, [m], claimed=1))
        out += [share(f"ring{i}", "bg4", (7 * i + 5) * HOUR + d, [f"o{(9 * i + d) % 60}"], claimed=1) for d in (0, 1)]
    return out


def closed_signal(rows: list[dict[str, Any]], node: str) -> dict[str, Any] | None:
    row = next(r for r in rows if r["kind"] == "user" and r["node"] == node)
    return next((s for s in row["signals"] if s["name"] == "closed_group"), None)


def test_a_sparse_ring_nobody_shares_into_is_a_closed_group() -> None:
    rows = score_events(background() + ring_events())
    for i in range(6):
        sig = closed_signal(rows, f"ring{i}")
        # 18 shares inside among 6 accounts: 3 per member, the top of the ramp
        assert sig is not None and sig["value"] == 3.0 and sig["score"] == 1.0
        assert sig["detail"] == ("one of 6 accounts that share with each other (3.0 shares inside per account) "
                                 "and hear from nobody else")
    # the ordinary users: one strongly connected world of 60, about one share inside per member
    assert all(closed_signal(rows, f"o{k}") is None for k in range(60))


def test_a_share_from_a_real_user_into_the_ring_opens_it() -> None:
    events = background() + ring_events()
    events.append(share("o5", "bg1", 3 * HOUR, ["ring2"], claimed=1))
    rows = score_events(events)
    assert all(closed_signal(rows, f"ring{i}") is None for i in range(6))


def test_a_thin_ring_scores_by_its_shares_per_member() -> None:
    rows = score_events(background() + ring_events(step=2))
    sig = closed_signal(rows, "ring0")
    # 12 shares among 6: 2 per member, a third of the way up the ramp 1.5 -> 3
    assert sig is not None and sig["value"] == 2.0 and sig["score"] == 0.3333  # rows round to 4 places


def test_pure_sharers_feeding_a_ring_join_it_and_the_group_bounds_hold() -> None:
    m = np.zeros((10, 10))
    ring = np.arange(4)
    m[np.ix_(ring, ring)] = 1 - np.eye(4)
    m[4, 0] = m[4, 1] = 1      # account 4 never received anything: the ring's own sharer
    m[0, 9] = 1                # a cover share out of the ring changes nothing
    group, size, per = closed_groups(sp.csr_matrix(m), min_size=4, max_size=100)
    assert (group[:5] >= 0).all() and len(set(group[:5].tolist())) == 1 and (group[5:] < 0).all()
    assert size[:5].tolist() == [5.0] * 5 and per[0] == 14 / 5
    # the size bounds are on the strongly connected part, before its sharers join
    assert (closed_groups(sp.csr_matrix(m), min_size=5, max_size=100)[0] < 0).all()
    assert (closed_groups(sp.csr_matrix(m), min_size=3, max_size=3)[0] < 0).all()


def test_a_blocks_closed_reach_holds_targets_the_peel_left_out() -> None:
    m = np.zeros((40, 40))
    m[:8, 8:20] = 1                 # a block: 8 sharers, 12 targets
    m[:3, 20] = 1                   # three of its sharers and nobody else reach account 20
    m[:2, 21] = 1                   # two reach account 21: a coincidence a ring's cover produces
    m[:3, 22] = 1
    m[25:35, 22] = 1                # account 22 hears from ten others as well
    claims = sp.csr_matrix(np.where(m > 0, 0.5, 0.0))
    blocks = find_blocks(sp.csr_matrix(m), min_density=0.6, claims=claims, reach_closure=0.9, reach_sharers=3,
                         reach_claim=0.3)
    assert blocks[0].rows.tolist() == list(range(8)) and blocks[0].cols.tolist() == list(range(8, 20))
    assert blocks[0].reach.tolist() == [20]
    # claims below the bar: what the block sent went unclaimed
    unclaimed = find_blocks(sp.csr_matrix(m), min_density=0.6, claims=claims * 0.5, reach_closure=0.9,
                            reach_sharers=3, reach_claim=0.3)
    assert unclaimed[0].reach.tolist() == []
