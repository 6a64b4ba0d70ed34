"""The synthetic workload: simulated share events with ground truth.

``world`` (the social graph and its users), ``organic`` (organic coupon
cascades), ``fraud`` (planted fraud, one function per kind), ``export``
(events and truth rows as the service exports them), ``simulate`` (the entry
points; ``python -m graphs.workload.simulate``).
"""

from __future__ import annotations

__all__ = ["export", "fraud", "organic", "simulate", "world"]
