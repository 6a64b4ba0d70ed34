from __future__ import annotations

import heapq

import numpy as np
import pytest
import scipy.sparse as sp

from graphs.scorers.dense import batch_peel, find_blocks, fraudar_weights, greedy_peel, prune


def reference_peel(w: np.ndarray) -> tuple[set[int], set[int], float]:
    """Plain O(n^2) FRAUDAR greedy: drop the cheapest node, keep the best prefix."""
    n_r, n_c = w.shape
    alive_r, alive_c = set(range(n_r)), set(range(n_c))
    alive_r = {i for i in alive_r if w[i].sum() > 0}
    alive_c = {j for j in alive_c if w[:, j].sum() > 0}
    best = (set(alive_r), set(alive_c), w.sum() / max(len(alive_r) + len(alive_c), 1))
    while len(alive_r) + len(alive_c) > 1:
        cand = [(w[i, list(alive_c)].sum(), 0, i) for i in alive_r] + \
               [(w[list(alive_r), j].sum(), 1, j) for j in alive_c]
        _p, side, i = heapq.nsmallest(1, cand, key=lambda x: (x[0], x[1] * 10**6 + x[2]))[0]
        (alive_r if side == 0 else alive_c).discard(i)
        f = w[np.ix_(sorted(alive_r), sorted(alive_c))].sum() if alive_r and alive_c else 0.0
        d = f / (len(alive_r) + len(alive_c))
        if d > best[2] + 1e-12:
            best = (set(alive_r), set(alive_c), d)
    return best


def test_heap_peel_matches_the_plain_greedy_on_random_blocks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        m = (rng.random((9, 11)) < 0.25).astype(float)
        m[:4, :5] = rng.random((4, 5)) < 0.9  # a planted block
        w = fraudar_weights(sp.csr_matrix(m))
        r, c, d = greedy_peel(w)
        rr, rc, rd = reference_peel(w.toarray())
        assert abs(d - rd) < 1e-9
        assert set(r.tolist()) == rr and set(c.tolist()) == rc


def test_batch_peel_is_within_its_approximation_bound() -> None:
    rng = np.random.default_rng(3)
    m = (rng.random((200, 200)) < 0.02).astype(float)
    m[:15, :20] = 1
    w = fraudar_weights(sp.csr_matrix(m))
    _, _, exact = greedy_peel(w)
    r, _c, approx = batch_peel(w, eps=0.05)
    assert approx >= exact / (2 * 1.05) and approx <= exact + 1e-9
    assert set(range(15)) <= set(r.tolist())


def test_prune_keeps_every_block_at_least_as_dense_as_the_threshold() -> None:
    m = np.zeros((30, 30))
    m[:6, :6] = 1  # density 36 w / 12
    m[10:30, 10] = 1  # a star: light everywhere
    w = fraudar_weights(sp.csr_matrix(m))
    rows, cols = prune(w, 1.0)
    assert rows.nonzero()[0].tolist() == list(range(6))
    assert cols.nonzero()[0].tolist() == list(range(6))


def test_camouflage_does_not_hide_the_block_but_an_open_core_is_not_closed() -> None:
    rng = np.random.default_rng(0)
    n = 400
    m = np.zeros((n, n))
    m[:10, 10:25] = 1  # 10 fraudsters, 15 targets, complete
    for i in range(10):  # each camouflages with 30 edges to random users
        m[i, rng.choice(np.arange(100, n), 30, replace=False)] = 1
    blocks = find_blocks(sp.csr_matrix(m), min_density=1.0)
    assert blocks[0].rows.tolist() == list(range(10))
    assert blocks[0].cols.tolist() == list(range(10, 25))
    assert blocks[0].closure == pytest.approx(1.0)
