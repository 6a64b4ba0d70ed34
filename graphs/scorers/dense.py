"""Dense blocks that survive camouflage: FRAUDAR (Hooi et al., KDD 2016).

The share matrix is read as a bipartite graph, sharers (rows) x recipients
(columns).  Each edge weighs ``1 / log(column degree + 5)``: an edge into a
recipient that everybody shares with says little, an edge into a recipient
that only this group touches says a lot.  The block is the set ``S`` that
maximises ``f(S) / |S|`` (total edge weight inside over node count) found by
greedy peeling: repeatedly drop the node whose removal costs least.  Edges a
fraudster adds towards normal users (camouflage) lie outside the block and
cannot lower its density, which is why this works where per-node degree fails.

Two costs are kept linear.  First a vectorised pruning drops, round after
round, every node whose weight into what is left is below ``min_density``:
a node of any block that is locally densest has at least the block's density
inside it, so no block of that density is lost.  Then the exact peel runs
with a binary heap and lazy deletion on what survives, usually a tiny part
of the graph; if much survives, a vectorised batch peel (Bahmani et al. 2012)
takes its place.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.scorers.block_reach import closed_reach

__all__ = ["C_LOG", "Block", "batch_peel", "blocks_after_pruning", "claimed_core", "column_weight", "find_blocks",
           "fraudar_weights", "greedy_peel", "prune"]

#: The constant of FRAUDAR's column weighting ``1 / log(degree + c)``.
C_LOG = 5.0


@dataclass(frozen=True)
class Block:
    """A dense block: sharer rows, recipient columns, density ``f(S)/|S|``, closure.

    ``reach``: recipients left out by the peel that hear from the block's
    rows alone (:func:`graphs.scorers.block_reach.closed_reach`); members,
    not counted in ``density`` or ``closure``.
    """

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    density: float
    closure: float
    reach: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def column_weight(deg: NDArray[np.int64]) -> NDArray[np.float64]:
    """FRAUDAR's weight ``1 / log(deg + 5)`` of an edge into a column of in-degree ``deg``.

    One function for both engines: the Spark engine computes the weights of
    the edges it collects with it, so they are the numpy engine's to the
    last bit (the peel breaks exact ties, and a bit more or less is a tie
    more or less).

    Examples
    --------
    >>> bool(column_weight(np.array([2]))[0] == 1 / np.log(7))
    True
    """
    out: NDArray[np.float64] = 1.0 / np.log(deg + C_LOG)
    return out


def fraudar_weights(s: sp.spmatrix) -> sp.csr_matrix:
    """Binary pattern of ``s`` with each column weighted ``1 / log(deg + 5)``.

    Examples
    --------
    >>> w = fraudar_weights(sp.csr_matrix(np.ones((2, 1))))
    >>> bool(abs(w[0, 0] - 1 / np.log(7)) < 1e-12)
    True
    """
    b = sp.csr_matrix(s, dtype=np.float64, copy=True)
    b.data[:] = 1.0
    col_deg = np.bincount(b.indices, minlength=b.shape[1])
    b.data = column_weight(col_deg[b.indices])
    return b


def prune(w: sp.csr_matrix, min_density: float, *,
          max_rounds: int = 200) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Rows and columns left after iteratively dropping nodes lighter than ``min_density``.

    Examples
    --------
    >>> w = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]]))
    >>> [m.tolist() for m in prune(w, 1.5)]
    [[False, False], [False, False]]
    """
    wt = w.T.tocsr()
    rows = np.ones(w.shape[0], dtype=bool)
    cols = np.ones(w.shape[1], dtype=bool)
    for _ in range(max_rounds):
        r_prio = w @ cols.astype(np.float64)
        c_prio = wt @ rows.astype(np.float64)
        new_rows = rows & (r_prio >= min_density)
        new_cols = cols & (c_prio >= min_density)
        if (new_rows == rows).all() and (new_cols == cols).all():
            break
        rows, cols = new_rows, new_cols
    return rows, cols


def greedy_peel(w: sp.csr_matrix) -> tuple[NDArray[np.int64], NDArray[np.int64], float]:
    """Exact FRAUDAR peeling of a (small) weighted bipartite matrix.

    Returns the row indices, column indices and density ``f(S)/|S|`` of the
    best set seen while peeling.  O(E log E) with a lazy-deletion heap.
    Nodes of equal priority leave in index order, and which one leaves first
    changes its neighbours' priorities: the block depends on how the nodes
    are numbered (the Spark engine numbers them as the numpy reader does).

    Examples
    --------
    >>> block = np.zeros((4, 4)); block[:3, :3] = 1; block[3, 3] = 1
    >>> r, c, d = greedy_peel(sp.csr_matrix(block))
    >>> r.tolist(), c.tolist(), d
    ([0, 1, 2], [0, 1, 2], 1.5)
    """
    n_r, n_c = w.shape
    coo = w.tocoo()
    # one adjacency over rows 0..n_r-1 and columns n_r..n_r+n_c-1
    a = sp.csr_matrix((np.concatenate([coo.data, coo.data]),
                       (np.concatenate([coo.row, coo.col + n_r]), np.concatenate([coo.col + n_r, coo.row]))),
                      shape=(n_r + n_c, n_r + n_c))
    prio = np.asarray(a.sum(axis=1)).ravel()
    total = float(coo.data.sum())
    alive = prio > 0
    n_alive = int(alive.sum())
    heap = [(float(p), int(i)) for i, p in enumerate(prio) if p > 0]
    heapq.heapify(heap)
    best, best_k = total / max(n_alive, 1), 0
    removed: list[int] = []
    indptr, indices, data = a.indptr, a.indices, a.data
    plist = prio.tolist()
    while heap and n_alive > 1:
        p, i = heapq.heappop(heap)
        if not alive[i] or p != plist[i]:
            continue  # stale heap entry
        alive[i] = False
        n_alive -= 1
        removed.append(i)
        total -= plist[i]
        lo, hi = indptr[i], indptr[i + 1]
        for j, x in zip(indices[lo:hi].tolist(), data[lo:hi].tolist(), strict=True):
            if alive[j]:
                plist[j] -= x
                heapq.heappush(heap, (plist[j], j))
        dens = total / n_alive
        if dens > best + 1e-12:
            best, best_k = dens, len(removed)
    keep = prio > 0
    keep[np.asarray(removed[:best_k], dtype=np.int64)] = False
    nodes = np.flatnonzero(keep)
    return nodes[nodes < n_r], nodes[nodes >= n_r] - n_r, float(best)


def batch_peel(w: sp.csr_matrix, eps: float = 0.05) -> tuple[NDArray[np.int64], NDArray[np.int64], float]:
    """Vectorised approximate peel: drop all nodes below ``2 (1 + eps)`` x density per round.

    Examples
    --------
    >>> block = np.zeros((4, 4)); block[:3, :3] = 1; block[3, 3] = 1
    >>> r, c, d = batch_peel(sp.csr_matrix(block))
    >>> r.tolist(), c.tolist(), d
    ([0, 1, 2], [0, 1, 2], 1.5)
    """
    wt = w.T.tocsr()
    rows = np.ones(w.shape[0], dtype=bool)
    cols = np.ones(w.shape[1], dtype=bool)
    best = (rows.copy(), cols.copy(), -1.0)
    while rows.any() and cols.any():
        r_prio = (w @ cols.astype(np.float64)) * rows
        c_prio = (wt @ rows.astype(np.float64)) * cols
        rows &= r_prio > 0
        cols &= c_prio > 0
        n = int(rows.sum() + cols.sum())
        if n == 0:
            break
        dens = float(r_prio.sum()) / n
        if dens > best[2]:
            best = (rows.copy(), cols.copy(), dens)
        # the mean priority is 2 f/|S|, so this always removes somebody
        cut = 2 * (1 + eps) * dens
        rows &= r_prio > cut
        cols &= c_prio > cut
    return np.flatnonzero(best[0]), np.flatnonzero(best[1]), max(best[2], 0.0)


def _peel(sub: sp.csr_matrix, exact_limit: int) -> tuple[NDArray[np.int64], NDArray[np.int64], float]:
    """Exact heap peel when small; else a vectorised batch peel, refined exactly once small."""
    if sub.nnz <= exact_limit:
        return greedy_peel(sub)
    r, c, d = batch_peel(sub)
    cand = sub[r][:, c].tocsr()
    if 0 < cand.nnz <= exact_limit:
        r2, c2, d2 = greedy_peel(cand)
        if d2 >= d:
            return r[r2], c[c2], d2
    return r, c, d


def _closure(w: sp.csr_matrix, rows: NDArray[np.int64], cols: NDArray[np.int64],
             col_total: NDArray[np.float64]) -> float:
    inside = float(w[rows][:, cols].sum())
    return inside / max(float(col_total[cols].sum()), 1e-12)


def _refine(w: sp.csr_matrix, rows: NDArray[np.int64], cols: NDArray[np.int64],
            col_total: NDArray[np.float64], dens: float, closure: float,
            exact_limit: int) -> tuple[NDArray[np.int64], NDArray[np.int64], float, float]:
    """Split a closed block out of an open one that peeling merged it with.

    A fraud block sitting next to an organic dense core can be peeled out
    together with it.  Its recipients are still closed (they hear mostly from
    inside), so peeling again over only the closed recipients separates it.
    """
    inside = np.asarray(w[rows][:, cols].sum(axis=0)).ravel()
    closed = cols[inside >= 0.5 * col_total[cols]]
    if closed.size in (0, cols.size):
        return rows, cols, dens, closure
    sub = w[rows][:, closed].tocsr()
    br, bc, d2 = _peel(sub, exact_limit)
    if br.size == 0:
        return rows, cols, dens, closure
    r2, c2 = rows[br], closed[bc]
    cl2 = _closure(w, r2, c2, col_total)
    return (r2, c2, d2, cl2) if cl2 > closure else (rows, cols, dens, closure)


def claimed_core(w: sp.csr_matrix, claims: sp.csr_matrix, col_total: NDArray[np.float64],
                 rows: NDArray[np.int64], cols: NDArray[np.int64], exact_limit: int) -> Block | None:
    """The densest core of a block once every edge is weighted by what its recipient claimed.

    A block that holds a large part of the linked users is the closed world
    itself, not a group, and scores nothing; a reward ring whose members
    share to each other (no separate sinks) can be peeled out inside it,
    because its density is that of the world around it.  What the world
    does not do is claim nearly everything its members send each other: a
    peel over ``w * claims`` (FRAUDAR's weight times the pair's claim
    credit) finds the group that does.  The core's ``density`` and
    ``closure`` are measured on ``w``, like any block's.

    Examples
    --------
    >>> m = np.zeros((40, 40)); m[np.arange(40), (np.arange(40) + 1) % 40] = 1
    >>> m[np.arange(40), (np.arange(40) + 2) % 40] = 1   # a closed world
    >>> ring = np.arange(30, 35); m[np.ix_(ring, ring)] = 1 - np.eye(5)
    >>> c = np.where(m > 0, 0.1, 0); c[np.ix_(ring, ring)] = 1.0   # the ring claims all it gets
    >>> w = fraudar_weights(sp.csr_matrix(m))
    >>> total = np.bincount(w.indices, weights=w.data, minlength=40)
    >>> b = claimed_core(w, sp.csr_matrix(c), total, np.arange(40), np.arange(40), 20_000)
    >>> b.rows.tolist(), b.cols.tolist()
    ([30, 31, 32, 33, 34], [30, 31, 32, 33, 34])
    """
    sub = sp.csr_matrix(w[rows][:, cols].multiply(claims[rows][:, cols]))
    sub.eliminate_zeros()
    if sub.nnz == 0:
        return None
    br, bc, _ = _peel(sub, exact_limit)
    if br.size == 0 or bc.size == 0:
        return None
    r, c = rows[br], cols[bc]
    dens = float(w[r][:, c].sum()) / (r.size + c.size)
    return Block(r, c, dens, _closure(w, r, c, col_total))


def find_blocks(s: sp.spmatrix, *, min_density: float, max_blocks: int = 30, min_side: int = 3,
                exact_limit: int = 20_000, refine_below: float = 0.75,
                patience: int | None = None, claims: sp.spmatrix | None = None,
                max_members: float | None = None, reach_closure: float | None = None,
                reach_sharers: int = 3, reach_claim: float = 0.3) -> list[Block]:
    """Extract dense blocks one after another (FRAUDAR's repeated detection).

    After each block its rows and columns are removed and the rest is
    pruned again.  Stops when the best block is lighter than ``min_density``,
    after ``max_blocks``, or after ``patience`` blocks in a row whose closure
    is below ``refine_below`` (what is left is the open organic core).
    Each :class:`Block` has ``rows``, ``cols`` (indices into ``s``), ``density`` and
    ``closure``: the share of the block's recipients' incoming weight that
    comes from the block's sharers.  Camouflage is outgoing, so it cannot
    open a block up; an organic dense core is open, because its recipients
    also hear from everyone around it.

    With ``claims`` (sharer x recipient claim credit, :func:`graphs.scorers.
    receivers.pair_claims`) and ``max_members``, a block of more than
    ``max_members`` users (too big to be a group: the closed world itself)
    is searched for a claimed core (:func:`claimed_core`), reported as a
    block of its own before it.

    Examples
    --------
    >>> m = np.zeros((10, 10)); m[:4, 4:9] = 1; m[9, 0] = 1
    >>> [(b.rows.tolist(), b.cols.tolist()) for b in find_blocks(sp.csr_matrix(m), min_density=1.0)]
    [([0, 1, 2, 3], [4, 5, 6, 7, 8])]
    """
    w = fraudar_weights(s)
    col_total = np.bincount(w.indices, weights=w.data, minlength=w.shape[1]).astype(np.float64)
    rows_ok, cols_ok = prune(w, min_density)
    return blocks_after_pruning(w, col_total, rows_ok, cols_ok, min_density=min_density, max_blocks=max_blocks,
                                min_side=min_side, exact_limit=exact_limit, refine_below=refine_below,
                                patience=patience, claims=None if claims is None else sp.csr_matrix(claims),
                                max_members=max_members, reach_closure=reach_closure,
                                reach_sharers=reach_sharers, reach_claim=reach_claim)


def blocks_after_pruning(w: sp.csr_matrix, col_total: NDArray[np.float64], rows_ok: NDArray[np.bool_],
                         cols_ok: NDArray[np.bool_], *, min_density: float, max_blocks: int = 30,
                         min_side: int = 3, exact_limit: int = 20_000, refine_below: float = 0.75,
                         patience: int | None = None, claims: sp.csr_matrix | None = None,
                         max_members: float | None = None, reach_closure: float | None = None,
                         reach_sharers: int = 3, reach_claim: float = 0.3) -> list[Block]:
    """The loop of :func:`find_blocks` once ``w`` is weighted and pruned.

    It reads only the rows and columns left by the pruning (and their
    ``col_total``), so the Spark engine prunes the whole graph on the
    cluster and runs this on the small part that survives.
    """
    blocks: list[Block] = []
    open_in_a_row = 0
    while len(blocks) < max_blocks and rows_ok.any() and cols_ok.any():
        if patience is not None and open_in_a_row >= patience:
            break
        r_idx, c_idx = np.flatnonzero(rows_ok), np.flatnonzero(cols_ok)
        sub = w[r_idx][:, c_idx].tocsr()
        br, bc, dens = _peel(sub, exact_limit)
        if dens < min_density or br.size == 0:
            break
        rows, cols = r_idx[br], c_idx[bc]
        closure = _closure(w, rows, cols, col_total)
        if closure < refine_below:
            rows, cols, dens, closure = _refine(w, rows, cols, col_total, dens, closure, exact_limit)
        if claims is not None:
            core = claimed_core(w, claims, col_total, rows, cols, exact_limit)
            big = max_members is not None and np.union1d(rows, cols).size > max_members
            if (core is not None and core.rows.size >= min_side and core.cols.size >= min_side
                    and core.density >= min_density and core.closure >= refine_below
                    and (big or core.closure > closure) and core.rows.size + core.cols.size < rows.size + cols.size):
                blocks.append(core)
        if rows.size >= min_side and cols.size >= min_side and dens >= min_density:
            # the targets the peel trimmed off: they hear from this block's sharers alone
            reach = (closed_reach(w, col_total, rows, cols, cols_ok, min_sharers=reach_sharers,
                                  min_closure=reach_closure, claims=claims, min_claim=reach_claim)
                     if reach_closure is not None else np.zeros(0, dtype=np.int64))
            blocks.append(Block(rows, cols, dens, closure, reach))
            cols_ok[reach] = False
        open_in_a_row = open_in_a_row + 1 if closure < refine_below else 0
        rows_ok[rows] = False
        cols_ok[cols] = False
        # what is left around the block may no longer be dense enough
        r_left, c_left = np.flatnonzero(rows_ok), np.flatnonzero(cols_ok)
        if r_left.size and c_left.size:
            keep_r, keep_c = prune(w[r_left][:, c_left], min_density)
            rows_ok[r_left[~keep_r]], cols_ok[c_left[~keep_c]] = False, False
    return blocks
