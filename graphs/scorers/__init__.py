"""Scorers: anomaly and KOL scores of every node, and the rows they make.

``structural``, ``dense`` (FRAUDAR), ``blocks`` and ``temporal`` hold the anomaly signals,
``anomaly`` combines them, ``kol`` the KOL score, ``score`` runs them all on
an event table and ``rows`` turns a result into score rows.
"""

from __future__ import annotations

__all__ = ["anomaly", "blocks", "dense", "kol", "rows", "score", "structural", "temporal"]
