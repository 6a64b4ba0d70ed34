"""Named mixes of planted fraud and organic look-alikes (``simulate --profile``).

- ``default``: the classic kinds of :mod:`graphs.workload.fraud` (device
  farms, star sprayers and their sinks, camouflaged dense blocks, lockstep
  groups, non-decaying bursts, low-claim spammers); no look-alikes.  It
  draws the same random numbers as before the profiles existed; only the
  coupons' issue times were fixed (fraud used to read placeholder times),
  which moves some fraud in time.
- ``hard``: the evasive kinds of :mod:`graphs.workload.fraud_hard` (slow
  farms, a device-rotating camouflaged ring whose sinks claim, hoarders and
  their feeders, ten-minute lockstep, threshold sprayers) and the organic
  look-alikes of :mod:`graphs.workload.lookalikes` (chat pushers planted
  last).
- ``mixed``: everything of both, with the look-alikes.

Examples
--------
>>> sorted(PROFILES)
['default', 'hard', 'mixed']
"""

from __future__ import annotations

from graphs.workload.fraud import DEFAULT_PLANTERS, Planter
from graphs.workload.fraud_hard import HARD_PLANTERS
from graphs.workload.lookalikes import LATE_LOOKALIKE_PLANTERS, LOOKALIKE_PLANTERS

__all__ = ["PROFILES"]

#: profile name -> planters, in planting order (look-alikes first: fraud may reuse their users)
PROFILES: dict[str, tuple[Planter, ...]] = {
    "default": DEFAULT_PLANTERS,
    "hard": LOOKALIKE_PLANTERS + HARD_PLANTERS + LATE_LOOKALIKE_PLANTERS,
    "mixed": LOOKALIKE_PLANTERS + DEFAULT_PLANTERS + HARD_PLANTERS + LATE_LOOKALIKE_PLANTERS,
}
