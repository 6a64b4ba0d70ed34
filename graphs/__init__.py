"""Batch share-graph scoring: events -> graph -> KOL and anomaly scores -> report.

A pure library (numpy, scipy, networkx, matplotlib; no Flask, no Redis).  The
service's CLI calls :func:`graphs.pipeline.run_score` and
:func:`graphs.simulate.write_workload`.
"""

from __future__ import annotations

__all__ = ["pipeline", "simulate"]
