"""The Spark engine: the same KOL and anomaly scores as DataFrame operations.

Needs ``pyspark`` (requirements-spark.txt) and Java 17.  Every formula,
threshold and analyst sentence comes from :mod:`graphs.signals`, as in the
numpy engine; what differs is how the measures are gathered: joins and
aggregations, iterative label propagation and PageRank, cascade sums and
FRAUDAR pruning with checkpoints.  Nothing collects the whole graph on the
driver: only scalars (quantiles, the typical claim rate, PageRank's dangling
mass and change per round) and the small dense cores left by the pruning
come back to it, and the events of the few flagged nodes that the cases are
cut from.

``session`` (the SparkSession), ``ops`` (the formulas' operations on
columns), ``read`` (events from JSON lines or Parquet), ``features``,
``structural``, ``temporal``, ``dense``, ``community``, ``cascade``,
``pagerank`` (iterative PageRank for the influence signal), ``anomaly``,
``kol``, ``rows`` (rendering and writing), ``cases`` (the flagged nodes' slice
of the events, collected to cut the cases with :mod:`graphs.cases`), ``run``
(the job) and ``writeback``.
"""

from __future__ import annotations

__all__ = ["anomaly", "cascade", "cases", "community", "dense", "features", "kol", "main", "ops", "pagerank", "read",
           "rows", "run", "session", "structural", "temporal", "writeback"]
