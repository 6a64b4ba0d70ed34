"""Entry point for ``spark-submit``: score events on a cluster.

``spark-submit [settings] graphs/spark/main.py --input EVENTS --output DIR``
with the project shipped by ``--py-files`` (see docs/spark.md).  The master
and every setting come from ``spark-submit``; ``--redis-url`` writes the
scores back into Redis from the executors, and the run's cases with them.
"""

from __future__ import annotations

import argparse
import json

from graphs.spark.run import spark_score

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, score, print the summary as JSON."""
    ap = argparse.ArgumentParser(prog="graphs.spark.main", description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="JSON lines (file or folder) or a Parquet folder")
    ap.add_argument("--output", required=True, help="folder for scores.parquet, the JSON-line parts and the cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--redis-url", help="write the scores and cases back into this Redis (one version flip)")
    ap.add_argument("--queue-threshold", type=float, default=0.8,
                    help="devices at or above this anomaly enter the review queue")
    a = ap.parse_args(argv)
    summary, res = spark_score(a.input, a.output, master=None, seed=a.seed)
    if a.redis_url:
        from graphs.spark.writeback import write_back

        summary["version"] = write_back(res, a.redis_url, source=a.input, queue_threshold=a.queue_threshold)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
