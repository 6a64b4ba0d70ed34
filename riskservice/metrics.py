"""Prometheus metrics of one app.

Under gunicorn every worker is a process, so the metrics use
prometheus-client's multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set
(``config/gunicorn.conf.py`` sets it before workers start) and ``/metrics``
then adds up all workers. The metrics are registered on a registry of the
app's own so that several apps (tests) can live in one process.

Across worker restarts: a counter's file stays when its worker dies, so the
sums never go down (a killed worker's counts are kept, its replacement
counts in a file of its own); a live gauge's file is removed by
``mark_process_dead`` (gunicorn's ``child_exit`` hook), so
``risk_worker_processes`` counts the workers alive now.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The service's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._requests: dict[tuple[str, int], tuple[Any, Any]] = {}
        r = self.registry
        self.decisions = Counter("risk_decisions", "Decisions answered, by outcome.",
                                 ["decision", "degraded"], registry=r)
        self.rule_hits = Counter("risk_rule_hits", "Rules that fired, by rule and mode (enforced or shadow).",
                                 ["rule", "mode"], registry=r)
        self.latency = Histogram("risk_request_seconds", "Request latency, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("risk_requests", "HTTP requests, by endpoint and status.",
                                ["endpoint", "status"], registry=r)
        self.rollout_evaluations = Counter(
            "risk_rollout_evaluations", "Decisions judged by a rule under gray rollout, by rule and arm.",
            ["rule", "arm"], registry=r)
        self.rollout_hits = Counter(
            "risk_rollout_hits", "Times a rule under gray rollout fired, by rule and arm.",
            ["rule", "arm"], registry=r)
        self.redis_errors = Counter("risk_redis_errors", "Redis calls that failed or timed out.",
                                    ["operation"], registry=r)
        # Summed over live processes only: a dead worker's value is dropped with its file.
        self.workers = Gauge("risk_worker_processes", "Worker processes serving (live ones only).",
                             registry=r, multiprocess_mode="livesum")
        self.workers.set(1)
        # Shares allowed during a Redis outage, waiting to be counted in Redis,
        # and those a full log could not keep (riskservice/limits/outage.py).
        self.outage_pending = Gauge("risk_outage_pending", "Shares allowed without Redis, not yet written to it.",
                                    registry=r, multiprocess_mode="livesum")
        self.outage_pending.set(0)
        self._outage_pending = 0
        self.unreplicated = Counter("risk_redis_unreplicated", "Decisions whose writes fewer replicas than "
                                    "RISK_REDIS_WAIT_REPLICAS acknowledged in time.", registry=r)
        self.outage_dropped = Counter("risk_outage_dropped", "Shares allowed without Redis that a full log "
                                      "could not keep, so never counted in Redis.", registry=r)
        self.native_fallbacks = Counter("risk_native_fallbacks", "Times decisions went back from the native "
                                        "decide (RISK.DECIDE) to decide.lua: the server lost the module or "
                                        "has another version (riskservice/limits/native/path.py).", registry=r)
        self.user_writes_lost = Counter("risk_user_writes_lost", "Redis Cluster: shares counted on their device "
                                        "whose write on the user's slot kept failing, so the user's window "
                                        "misses them (riskservice/limits/settles.py).", registry=r)

    def request_done(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (the children of both
        looked up once per endpoint and status)."""
        key = (endpoint, status)
        pair = self._requests.get(key)
        if pair is None:
            pair = self._requests[key] = (self.latency.labels(endpoint),
                                          self.requests.labels(endpoint, str(status)))
        pair[0].observe(seconds)
        pair[1].inc()

    def set_outage_pending(self, pending: int) -> None:
        """Set ``risk_outage_pending`` when it changed: every decision reports
        it, and a write to the gauge's file is as dear as a counter's."""
        if pending != self._outage_pending:
            self.outage_pending.set(pending)
            self._outage_pending = pending

    def child(self, metric: Counter | Histogram | Gauge, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: it is looked up on every request."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def exposition(self) -> bytes:
        """The text format of every worker's metrics (or this process's)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
