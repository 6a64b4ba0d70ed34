"""What every score is made of, shared by both engines.

``params`` holds the thresholds and weights, ``formulas`` each signal's
formula written once over an array backend (numpy arrays or Spark columns),
``ops`` the numpy helpers (ramps, noisy-OR, group-bys) and ``signal`` the
per-node explanation an analyst reads.
"""

from __future__ import annotations

__all__ = ["ops", "params", "signal"]
