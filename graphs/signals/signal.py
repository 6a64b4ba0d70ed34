"""The unit of explanation: one named measure per node and what it adds to a score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.signals.catalog import SignalSpec

__all__ = ["Signal"]


@dataclass
class Signal:
    """One signal over all nodes of one kind.

    ``value`` is the raw measure (a count, a rate, a density), ``score`` its
    contribution in [0, 1], ``detail`` a ``str.format`` template filled with
    ``value`` and the entries of ``extra`` for one node.

    Examples
    --------
    >>> s = Signal("device_farm", "anomaly", np.array([9.0]), np.array([1.0]),
    ...            "{value:.0f} accounts used this device")
    >>> s.row(0)
    {'name': 'device_farm', 'family': 'anomaly', 'value': 9.0, 'score': 1.0, 'detail': '9 accounts used this device'}
    """

    name: str
    family: str  # "anomaly" or "kol"
    value: NDArray[np.float64]
    score: NDArray[np.float64]
    detail: str
    extra: dict[str, NDArray[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: SignalSpec, value: NDArray[np.float64], score: NDArray[np.float64],
           extra: dict[str, NDArray[Any]] | None = None) -> Signal:
        """The signal ``spec`` (name, family, sentence) over all nodes."""
        return cls(spec.name, spec.family, value, score, spec.detail, dict(extra or {}))

    def row(self, i: int) -> dict[str, Any]:
        """The analyst-readable entry of node ``i``."""
        v = float(self.value[i])
        fields = {k: _plain(a[i]) for k, a in self.extra.items()}
        return {"name": self.name, "family": self.family, "value": round(v, 4),
                "score": round(float(self.score[i]), 4),
                "detail": self.detail.format(value=v, **fields)}


    def rows(self, idx: NDArray[np.int64]) -> list[dict[str, Any]]:
        """Entries of many nodes at once (converts arrays once, not per node)."""
        vals = self.value[idx].tolist()
        scores = np.round(self.score[idx], 4).tolist()
        extras = {k: a[idx].tolist() for k, a in self.extra.items()}
        fmt = self.detail.format
        out = []
        for j, v in enumerate(vals):
            fields = {k: a[j] for k, a in extras.items()}
            out.append({"name": self.name, "family": self.family, "value": round(v, 4),
                        "score": scores[j], "detail": fmt(value=v, **fields)})
        return out


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
