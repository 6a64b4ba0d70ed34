"""gunicorn settings for the share-risk service (``gunicorn -c config/gunicorn.conf.py wsgi:app``).

The master starts the embedded Redis (when no REDIS_URL is set) once, before
forking, so every worker shares one server, and starts it again if it exits;
and it prepares prometheus-client's
multiprocess directory so ``/metrics`` adds up all workers. It also starts
the real-time signal consumer (``RISK_SIGNALS``, on by default), starts it
again whenever it exits, and stops it on exit.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings

# Every value comes from the one validated Settings (a bad one stops gunicorn
# with a message naming the variable).
_settings = Settings.from_env()
bind = _settings.bind
workers = _settings.workers
# gevent workers: every connection is a greenlet, not a thread, so idle
# keep-alive connections and clients that dribble their headers cost a few
# kilobytes each and never starve the requests that are ready. (gthread parks
# idle keep-alive connections, but a connection whose headers never finish
# holds one of its few threads: 16 such sockets stopped the service.) The app
# is safe under gevent's monkey-patching: redis-py and hiredis read from the
# patched socket, the pooled client's lock and the breaker's become
# cooperative, and prometheus-client's multiprocess files are plain mmaps.
# RISK_WORKER_CLASS=gthread brings the thread pool back (RISK_THREADS each).
worker_class = _settings.worker_class
threads = _settings.threads
# Connections one gevent worker holds at once; more wait in the listen backlog.
worker_connections = _settings.worker_connections
backlog = 2048
# gunicorn's control socket (gunicornc) in the service's own data directory:
# its default, one path per user account, is taken over by the last instance
# started and removed when any of them stops (two instances run by one user:
# tests, a blue/green deploy). A path too long for a unix socket (about 100
# bytes) only loses the control socket, with an error in the log.
control_socket = str(_settings.data_dir / "gunicorn.ctl")
# A connection must send a whole request head within this many seconds, and an
# idle keep-alive connection is closed after as long (the async workers time
# both with one gevent.Timeout): a slow-header client is cut off, whatever its pace.
keepalive = _settings.keepalive_s
timeout = 30
# Request line and header limits (gunicorn answers 414 and 431 beyond them);
# the ids in a review URL stay far below, even percent-encoded.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
graceful_timeout = 10
# The app writes its own JSON access log; gunicorn's would be a second one.
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "riskservice.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}

# What the master starts (the embedded Redis, the signal consumer) is kept on
# the arbiter (`server`), not in this module: a reload (SIGHUP, `gunicornc
# reload`) runs this file again, and its globals would forget what to stop.


def on_starting(server: Any) -> None:
    settings = _settings
    server.risk_embedded = server.risk_signals = None
    metrics_dir = Path(settings.data_dir) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if settings.redis_url is None:
        from riskservice.embedded_redis import EmbeddedRedis

        embedded = server.risk_embedded = EmbeddedRedis(settings.data_dir)
        os.environ["REDIS_URL"] = embedded.ensure()
        if embedded.process is not None:  # (started here, not found running: ours to keep up)
            embedded.watch()
        server.log.info("embedded redis at %s", os.environ["REDIS_URL"])
    if settings.signals:
        # The real-time signal consumer: one process for the whole service
        # (its state is in memory), a child of the master, started again when
        # it exits, stopped with the master. On Redis Cluster it follows every
        # slot's shard of the event stream.
        from riskservice.signals.supervisor import ConsumerSupervisor

        signals = server.risk_signals = ConsumerSupervisor(
            [sys.executable, "-m", "riskservice", "signals", "--exit-with-parent"], server.log)
        server.log.info("signal consumer started (pid %s)", signals.start())


def post_worker_init(worker: Any) -> None:
    """Warm the worker up before it accepts a request: its connections to
    Redis (every master on a cluster), the scripts, the servers' clock and
    the slot-tag table, which its first decisions paid for within their
    budget and were answered degraded for (qa14 D3; the store's
    ``warm_up``). Here, not in ``create_app``: building the app stays free of
    process concerns, and each worker warms its own sockets after the fork."""
    import time

    from riskservice.state import risk_state

    started = time.monotonic()
    cold = risk_state(worker.wsgi).store.warm_up()
    worker.log.info("worker %s warmed up in %.0f ms%s", worker.pid, (time.monotonic() - started) * 1000,
                    f" (not reached: {', '.join(cold)})" if cold else "")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    signals, embedded = getattr(server, "risk_signals", None), getattr(server, "risk_embedded", None)
    if signals is not None:
        signals.stop(timeout_s=10)
        server.log.info("signal consumer stopped")
    if embedded is not None:
        embedded.stop()
        server.log.info("embedded redis stopped")
