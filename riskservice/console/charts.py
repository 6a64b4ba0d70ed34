"""Rule performance as pictures: bar charts of hits over time and precision with its interval.

Geometry only, computed here and drawn as inline SVG by the template (no
script, no CDN): one chart per rule, enforced hits stacked under shadow hits
per time bucket, and a precision scale with the point estimate and its 95 %
interval, so a precision backed by 3 labels shows as a wide bar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

WIDTH, HEIGHT = 520, 120
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 8, 22
SCALE_WIDTH = 240


def _when(ms: int, step_ms: int) -> str:
    """A bucket's start, as short as its size allows."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%m-%d %H:%M" if step_ms < 86_400_000 else "%Y-%m-%d")


def hits_chart(series: dict[str, list[int]], buckets: list[int], bucket_ms: int) -> dict[str, Any]:
    """Bars per bucket (enforced at the bottom, shadow on top) in a ``WIDTH`` x ``HEIGHT`` box.

    >>> c = hits_chart({"enforced": [2, 0], "shadow": [1, 4]}, [0, 3_600_000], 3_600_000)
    >>> c["top"], [(b["mode"], b["height"]) for b in c["bars"]]
    (4, [('enforced', 45.0), ('shadow', 22.5), ('shadow', 90.0)])
    """
    enforced, shadow = series.get("enforced", []), series.get("shadow", [])
    n = max(len(buckets), 1)
    top = max((e + s for e, s in zip(enforced, shadow, strict=False)), default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bars = []
    for i, start in enumerate(buckets):
        base = float(HEIGHT - BOTTOM)
        x = round(LEFT + i * slot + slot * 0.1, 1)
        for mode, count in (("enforced", enforced[i] if i < len(enforced) else 0),
                            ("shadow", shadow[i] if i < len(shadow) else 0)):
            if not count:
                continue
            h = round(plot_h * count / top, 1)
            base -= h
            bars.append({"x": x, "y": round(base, 1), "width": round(slot * 0.8, 1), "height": h, "mode": mode,
                         "count": count, "when": _when(start, bucket_ms)})
    return {"width": WIDTH, "height": HEIGHT, "top": top, "bars": bars, "left": LEFT, "right": WIDTH - RIGHT,
            "base": HEIGHT - BOTTOM, "ceiling": TOP,
            "first": _when(buckets[0], bucket_ms) if buckets else "",
            "last": _when(buckets[-1], bucket_ms) if buckets else ""}


def precision_scale(precision: dict[str, Any]) -> dict[str, Any] | None:
    """The point and the 95 % interval on a 0 to 1 scale ``SCALE_WIDTH`` wide; None without labels.

    >>> precision_scale({"precision": 0.5, "interval": [0.25, 0.75]})
    {'width': 240, 'x': 120.0, 'low': 60.0, 'high': 180.0}
    """
    if precision.get("precision") is None:
        return None
    low, high = precision.get("interval") or (precision["precision"], precision["precision"])
    return {"width": SCALE_WIDTH, "x": round(SCALE_WIDTH * precision["precision"], 1),
            "low": round(SCALE_WIDTH * low, 1), "high": round(SCALE_WIDTH * high, 1)}
