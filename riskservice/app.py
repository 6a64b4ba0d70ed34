"""The app factory: settings, Redis, policy, blueprints, errors, logs."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from config.settings import Settings
from riskservice.api import admin, cases, decisions, graph, openapi, ops, performance
from riskservice.api import review as review_api
from riskservice.api.access import record_request
from riskservice.api.body import too_large
from riskservice.api.hot_path import HotPath
from riskservice.api.responses import INTERNAL_ERROR, json_response, unavailable
from riskservice.auth import KeyRing
from riskservice.console import performance as console_performance
from riskservice.console import views as console
from riskservice.decisions.engine import DecisionEngine
from riskservice.decisions.lifecycle import ShareLifecycle
from riskservice.deployment import open_store
from riskservice.errors import ApiError, MethodNotAllowed, NotFound, StorageError
from riskservice.graph_store import VersionCache
from riskservice.limits.clock import Clock, ServerClock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.store import RedisStore
from riskservice.metrics import Metrics
from riskservice.policy.holder import PolicyHolder
from riskservice.policy.load import Policy
from riskservice.review.audit import note_policy
from riskservice.review.common import now_ms as review_now_ms
from riskservice.review.service import ReviewService
from riskservice.rewards import RewardChecker
from riskservice.signals.board_cache import BoardCache
from riskservice.state import EXTENSION, RiskState

error_log = logging.getLogger("riskservice.error")


def create_app(settings: Settings, *, clock: Clock | None = None) -> Flask:
    """Build the service, and nothing else: no threads, signal handlers,
    logging set-up, servers or writes (the process does those, see
    :mod:`riskservice.process`).

    Parameters
    ----------
    settings : Settings
        With a Redis URL (:func:`riskservice.process.serve` fills in the
        embedded Redis when none is configured).
    clock : Clock, optional
        Tests inject a manual clock; the service uses Redis server time.
    """
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url; riskservice.process.serve() starts "
                         "the embedded Redis when none is configured")
    policies = PolicyHolder(settings.policy_file, settings.data_dir, presets_file=settings.presets_file)
    retention_ms = settings.event_retention_days * 86_400_000
    store = open_store(settings, retention_ms=retention_ms)
    _audit_policy_changes(policies, store, clock, str(settings.policy_file))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    graph_versions = VersionCache(store.client)
    state = RiskState(
        settings=settings, policies=policies, store=store, keyring=KeyRing(settings.api_keys), metrics=Metrics(),
        graph_versions=graph_versions,
        engine=DecisionEngine(store, lambda: policies.current, clock=clock, fail_mode=settings.fail_mode,
                              decision_ttl_ms=settings.decision_ttl_s * 1000, retention_ms=retention_ms,
                              graph_key=graph_versions.fast_key,
                              cluster=isinstance(store, ClusterStore),
                              flags=BoardCache(store.client, clock=clock.now_ms if clock else None)),
        rewards=RewardChecker(store, lambda: policies.current, clock=clock, graph_key=graph_versions.fast_key,
                              ttl_ms=settings.decision_ttl_s * 1000),
        lifecycle=ShareLifecycle(store, lambda: policies.current, clock=clock, retention_ms=retention_ms),
        review=ReviewService(store, lambda: policies.current, clock or ServerClock()),
    )
    app.extensions[EXTENSION] = state

    app.register_blueprint(decisions.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(graph.bp)
    app.register_blueprint(review_api.bp)
    app.register_blueprint(performance.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(console_performance.bp)
    _register_errors(app)
    _register_access_log(app, state.metrics)
    # Decisions and outcomes skip Flask's dispatch (see riskservice.api.hot_path).
    app.wsgi_app = HotPath(app.wsgi_app, state, settings.max_body_bytes)  # type: ignore[method-assign]
    return app


def _audit_policy_changes(policies: PolicyHolder, store: RedisStore | ClusterStore, clock: Clock | None,
                          source: str) -> None:
    """Put every policy change in the audit trail (each version once, whichever
    worker sees it first); :func:`riskservice.process.note_policy_at_start`
    audits the version a process starts with."""
    clock = clock or ServerClock()

    def note(old: Policy | None, new: Policy) -> None:
        note_policy(store.client, new.version, previous=old.version if old else None,
                    now_ms=review_now_ms(clock, store.client), source=source)

    policies.on_change = note


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return json_response(exc.to_dict(), exc.status)

    @app.errorhandler(StorageError)
    def storage_error(exc: Exception) -> Response:
        # Redis is down or slow for a call that cannot be answered without it
        # (the decision path degrades instead and never gets here).
        error_log.warning("redis unavailable", extra={"path": request.path, "error": str(exc)})
        gone = unavailable()
        return json_response(gone.to_dict(), gone.status, {"Retry-After": "1"})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        mapped: ApiError
        if exc.code == 404:
            mapped = NotFound(f"no such endpoint: {request.path}")
        elif exc.code == 405:
            mapped = MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
            # RFC 9110: a 405 lists the methods the resource does support.
            allowed = sorted(getattr(exc, "valid_methods", None) or [])
            return json_response(mapped.to_dict(), 405, {"Allow": ", ".join(allowed)} if allowed else None)
        elif exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            mapped = too_large(limit)
        else:
            mapped = ApiError(exc.description or "bad request")
            mapped.status, mapped.code = exc.code or 400, (exc.name or "error").lower().replace(" ", "_")
        return json_response(mapped.to_dict(), mapped.status)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        error_log.exception("unhandled error", extra={"path": request.path})
        return json_response(INTERNAL_ERROR, 500)


def _register_access_log(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        now = time.perf_counter()
        rule = request.url_rule
        record_request(metrics, rule.rule if rule is not None else "unmatched", method=request.method,
                       path=request.path, status=response.status_code, seconds=now - g.get("started", now),
                       remote=request.remote_addr, principal=g.get("principal"))
        return response
