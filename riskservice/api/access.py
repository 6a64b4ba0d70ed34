"""What every answered request leaves behind: its metrics and its access-log line.

Flask's ``after_request`` hook (:mod:`riskservice.app`) and the issuer's hot
path (:mod:`riskservice.api.hot_path`) both call :func:`record_request`, so a
request is counted and logged the same way whichever served it.
"""

from __future__ import annotations

import logging
from typing import Any

from riskservice.auth import Principal
from riskservice.metrics import Metrics

access_log = logging.getLogger("riskservice.access")


def record_request(metrics: Metrics, endpoint: str, *, method: str, path: str, status: int, seconds: float,
                   remote: str | None, principal: Principal | None) -> None:
    """Count one answered request under ``endpoint`` (its URL rule) and log it at INFO.

    Parameters
    ----------
    metrics : Metrics
        The process's metrics.
    endpoint : str
        The matched URL rule (``"unmatched"`` when none matched): the
        metrics' label, so its values stay few.
    method, path : str
        As requested (the log only).
    status : int
        The answer's HTTP status.
    seconds : float
        From the request's arrival in the app to its answer.
    remote : str or None
        The client's address.
    principal : Principal or None
        The caller, once its key was checked.
    """
    metrics.request_done(endpoint, status, seconds)
    if not access_log.isEnabledFor(logging.INFO):
        return
    extra: dict[str, Any] = {"method": method, "path": path, "status": status, "ms": round(seconds * 1000, 3),
                             "remote": remote}
    if principal is not None:
        extra["key_id"] = principal.key_id
    access_log.info("request", extra=extra)
