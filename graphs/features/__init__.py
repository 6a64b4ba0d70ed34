"""Features: what the scorers measure, computed once from the event table.

``matrices`` (share and device matrices), ``nodes`` (per-node counts),
``cascade`` (coupon cascades and realised propagation), ``community``
(label propagation and community roles), ``pagerank`` (power
iteration for the influence signal), ``adjacency`` (per-node lists the
service stores for the neighbourhood view).
"""

from __future__ import annotations

__all__ = ["adjacency", "cascade", "community", "matrices", "nodes", "pagerank"]
