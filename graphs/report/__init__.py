"""The report of a scoring run (HTML and PNG plots) and quality against ground truth.

``html`` writes the report, ``plots`` draws it, ``picture`` builds the
networkx neighbourhood it draws, ``quality`` measures scores against a
simulator's truth.
"""

from __future__ import annotations

__all__ = ["html", "picture", "plots", "quality"]
