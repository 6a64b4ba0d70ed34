"""What a serving process does around the app: logging, the embedded Redis,
the policy watcher and SIGHUP, and auditing the policy it starts with.

:func:`riskservice.app.create_app` only builds the app; ``wsgi.py`` calls
:func:`serve`, which does these once per process (per gunicorn worker: the
workers import ``wsgi.py`` after the fork).
"""

from __future__ import annotations

import atexit
import gc
import logging
import signal
import threading
import time
from pathlib import Path

import redis
from flask import Flask

from config.settings import Settings
from riskservice import logs
from riskservice.app import create_app
from riskservice.deployment import UnsupportedRedis, check_deployment, cluster_enabled
from riskservice.embedded_redis import EmbeddedRedis
from riskservice.errors import StorageError
from riskservice.limits.outage import adopt_spilled
from riskservice.state import risk_state

log = logging.getLogger("riskservice.process")
# How often a process looks for shares allowed during an outage to count.
RECONCILE_INTERVAL_S = 1.0


def serve(settings: Settings | None = None) -> Flask:
    """The app as a serving process runs it (settings from the environment)."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        settings = settings.model_copy(update={"redis_url": embedded.ensure()})
        # Stops it only if this process started it (not when gunicorn's master did).
        atexit.register(embedded.stop)
    try:
        check_deployment(settings)
    except (UnsupportedRedis, redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        # One JSON line that says why (not a traceback); exit code 3 is
        # gunicorn's "worker failed to boot", which stops the master too
        # rather than starting workers that would fail the same way.
        log.critical("cannot start: %s", exc, extra={"redis_url": settings.redis_url})
        raise SystemExit(3) from None
    app = create_app(settings)
    start_policy_watch(app)
    note_policy_at_start(app)
    keep_outage_shares(app)
    keep_reconciling(app)
    # Everything built so far (modules, the app, its policy: about 90 000
    # objects) lives as long as the process: frozen, the cyclic collector
    # stops re-scanning it in each full collection (measured in process: a
    # 50 ms pause about every 10 000 decisions, 5 us each on average, and the
    # caches it flushed). Objects frozen here that later become cyclic
    # garbage, e.g. a policy replaced by a reload, are not reclaimed.
    gc.collect()
    gc.freeze()
    return app


def keep_outage_shares(app: Flask) -> None:
    """Shares this process allowed while Redis was unavailable and has not
    counted yet are written to the data folder when it exits, and any that
    an earlier process left there are taken over now, to be counted once
    Redis answers (riskservice.limits.outage)."""
    state = risk_state(app)
    folder = Path(state.settings.data_dir) / "outage"
    outage = state.engine.outage
    adopted = adopt_spilled(folder, outage)
    if adopted:
        log.warning("took over shares allowed during an outage by a stopped process", extra={"shares": adopted})

    def spill() -> None:
        path = outage.spill(folder)
        if path is not None:
            log.warning("redis did not come back before this process stopped: shares allowed meanwhile kept "
                        "for the next process", extra={"file": str(path)})

    atexit.register(spill)


def keep_reconciling(app: Flask, interval_s: float = RECONCILE_INTERVAL_S) -> threading.Thread:
    """Count the shares allowed during an outage once Redis answers, even
    with no decision coming: decisions write them a batch at a time on their
    way, so a quiet process would keep them (uncounted by the windows) until
    its next request or its exit. A daemon thread (a greenlet under gevent)
    looks every ``interval_s``."""
    engine = risk_state(app).engine

    def loop() -> None:
        while True:
            time.sleep(interval_s)
            if engine.outage.pending():
                try:
                    written = engine.reconcile_pending()
                except StorageError:
                    continue  # (still away: the next look tries again)
                log.info("shares allowed during an outage counted", extra={"shares": written})

    thread = threading.Thread(target=loop, name="outage-reconcile", daemon=True)
    thread.start()
    return thread


def refuse_a_cluster(url: str | None) -> None:
    """Stop at start-up when a single-Redis configuration names a Redis Cluster node.

    Every decision script touches keys of several slots, which a cluster
    refuses: without this check each share would be answered from the fail
    mode, degraded, and nothing stored. (A Redis that does not answer now is
    left to the decision path, which degrades and recovers by itself.)
    """
    if url is not None and cluster_enabled(url):
        raise UnsupportedRedis(f"REDIS_URL ({url}) is a Redis Cluster node: set RISK_REDIS_CLUSTER=1 to run on the "
                               "cluster (without it every decision would fail across slots)")


def start_policy_watch(app: Flask) -> None:
    """Re-read the policy file when it changes, and on SIGHUP (gunicorn's
    master turns its own HUP into new workers, which load it too)."""
    state = risk_state(app)
    if state.settings.policy_poll_s > 0:
        state.policies.watch(state.settings.policy_poll_s)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda *_: state.policies.reload())


def note_policy_at_start(app: Flask) -> None:
    """Audit the policy version this process starts with: a change made while
    the service was down is audited too (once, whichever worker is first)."""
    policies = risk_state(app).policies
    if policies.on_change is None:
        return
    try:
        policies.on_change(None, policies.current)
    except (redis.RedisError, StorageError) as exc:
        log.warning("cannot audit the policy version at start", extra={"error": str(exc)})
