"""Batch share-graph scoring: events -> features -> scores -> rows and report.

A pure library (numpy, scipy, networkx, matplotlib; no Flask, no Redis),
in subpackages by job:

- ``events``: the exported decision log to an :class:`~graphs.events.table.EventTable`;
- ``signals``: thresholds, formulas and the explanation of every signal,
  shared by both engines;
- ``features``: matrices, per-node counts, cascades, communities, adjacency;
- ``scorers``: anomaly and KOL scores and the rows they make;
- ``workload``: the synthetic workload with ground truth;
- ``report``: the HTML report and quality against ground truth;
- ``cases``: flagged nodes that belong together, grouped into cases for review;
- ``run``: the single-machine batch job the service's CLI calls;
- ``spark``: the same scores as Spark DataFrame operations (needs pyspark).
"""

from __future__ import annotations

__all__ = ["cases", "events", "features", "report", "run", "scorers", "signals", "workload"]
