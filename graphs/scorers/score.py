"""One scoring run on loaded events: features -> cascades -> anomaly -> KOL -> device KOL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from graphs.events.table import EventTable
from graphs.features.cascade import Propagation, propagation_by_user, reconstruct_cascades
from graphs.features.matrices import max_over_links
from graphs.features.nodes import NodeFeatures, node_features
from graphs.scorers.anomaly import AnomalyResult, anomaly_scores
from graphs.scorers.kol import KolResult, kol_scores
from graphs.signals.params import ScoringParams

__all__ = ["ScoreResult", "score_table"]


@dataclass
class ScoreResult:
    """Everything one scoring run computed, for the rows and for the report."""

    table: EventTable
    features: NodeFeatures
    propagation: Propagation
    anomaly: AnomalyResult
    kol: KolResult
    device_kol: NDArray[np.float64]
    timings: dict[str, float] = field(default_factory=dict)


def _stages(progress: bool) -> tqdm:
    # disable=None: tqdm turns itself off when stderr is not a terminal
    return tqdm(total=6, desc="scoring", unit="stage", disable=None if progress else True)


def score_table(t: EventTable, *, params: ScoringParams | None = None, seed: int = 0,
                progress: bool = False) -> ScoreResult:
    """Compute every score for already loaded events.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"]}])
    >>> r = score_table(t)
    >>> r.anomaly.user.shape, r.kol.user.shape
    ((2,), (2,))
    """
    p = params or ScoringParams()
    times: dict[str, float] = {}
    bar = _stages(progress)

    def step(name: str, t0: float) -> float:
        times[name] = time.perf_counter() - t0
        bar.set_postfix_str(name)
        bar.update(1)
        return time.perf_counter()

    t0 = time.perf_counter()
    f = node_features(t)
    t0 = step("features", t0)
    prop = propagation_by_user(t, reconstruct_cascades(t))
    t0 = step("cascades", t0)
    anom = anomaly_scores(t, f, p, seed=seed)
    t0 = step("anomaly", t0)
    kol = kol_scores(t, f, prop, anom.user, p, seed=seed)
    t0 = step("kol", t0)
    dev_kol = max_over_links(f.device_user_bin, kol.user)
    step("devices", t0)
    bar.close()
    return ScoreResult(t, f, prop, anom, kol, dev_kol, times)
