"""Cases: flagged users and devices that belong together (a farm, a ring, a star, hoarders and
their feeders), cut from one scoring run for the analysts' case review.

``ties`` (what links flagged nodes), ``build`` (connected groups -> cases),
``describe`` (kind, score, summary, members) and ``evidence`` (the ties with
their times, and a capped subgraph for drawing). Ids are given when cases
are written back (the service matches them to the stored ones).
"""

from __future__ import annotations

__all__ = ["build", "describe", "evidence", "files", "parts", "ties"]
