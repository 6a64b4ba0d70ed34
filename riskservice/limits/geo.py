"""Distances on the Earth, as the decision script computes them."""

from __future__ import annotations

import math

__all__ = ["haversine_km"]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (mean Earth radius), correct across the antimeridian.

    The same formula as ``lua/decide.lua``'s, so the in-memory reference and
    the script agree to the last bit.

    >>> round(haversine_km(0, 179.5, 0, -179.5), 1)
    111.2
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat, dlon = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))
