"""Command line: ``python -m riskservice <command>``.

Commands build only what they need: an operator's ban needs Redis, not the
web app or its API keys.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import click
import orjson
import redis

from config.settings import Settings, SettingsError
from riskservice import logs
from riskservice.api.params import valid_id
from riskservice.backtest import format_report, read_recorded, run_backtest
from riskservice.calibration.observe import TUNABLE
from riskservice.decisions.request import MAX_ID_LENGTH
from riskservice.deployment import UnsupportedRedis, check_deployment, open_store
from riskservice.embedded_redis import EmbeddedRedis
from riskservice.errors import Conflict, PolicyError, StorageError
from riskservice.events import read_events
from riskservice.limits.clock import ServerClock
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import canonical_ip
from riskservice.limits.store import RedisStore
from riskservice.policy.load import load_policy
from riskservice.review import audit
from riskservice.review.actions import ActionRequest, apply
from riskservice.review.common import now_ms


def _settings() -> Settings:
    """The service's settings, from the same environment variables (no API keys needed here)."""
    try:
        return Settings.from_env(require_keys=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _store() -> Iterator[RedisStore | ClusterStore]:
    """The service's Redis (or Redis Cluster, ``RISK_REDIS_CLUSTER=1``); an
    embedded one this command had to start is stopped after."""
    settings = _settings()
    url = settings.redis_url
    embedded = None
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = embedded.ensure()
        # (a command meant for a service on its own Redis must not seem to act on it)
        click.echo(f"REDIS_URL is not set: using the embedded Redis of {settings.data_dir}", err=True)
    settings = settings.model_copy(update={"redis_url": url, "redis_budget_ms": 2000})
    try:
        check_deployment(settings)
    except UnsupportedRedis as exc:
        raise click.ClickException(str(exc)) from None
    store = open_store(settings, retention_ms=settings.event_retention_days * 86_400_000)
    try:
        yield store
    finally:
        store.close()
        if embedded is not None:
            embedded.stop()


class _Commands(click.Group):
    """The tools' commands; Redis that cannot be reached, or fails, is one
    line naming it, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (StorageError, redis.RedisError) as exc:
            raise click.ClickException(f"Redis: {exc}") from None


@click.group(cls=_Commands)
def cli() -> None:
    """Share-risk service tools (Redis from REDIS_URL, else the embedded one)."""


KIND = click.Choice(["device", "user", "ip"])


@cli.command()
@click.argument("kind", type=KIND)
@click.argument("entity_id")
@click.option("--reason", required=True, help="Why; shown in every decision it blocks.")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who bans (for the record).")
@click.option("--hours", type=click.FloatRange(min=0, max=24 * 365, min_open=True),
              help="Lift the ban after this long (at most a year).")
def ban(kind: str, entity_id: str, reason: str, actor: str, hours: float | None) -> None:
    """Block every share of a device, user or ip."""
    entity_id = _entity(kind, entity_id)
    if not reason.strip():
        raise click.BadParameter("must not be blank", param_hint="--reason")
    until = int((time.time() + hours * 3600) * 1000) if hours else 0
    with _store() as store:
        if kind == "device":
            # As an analyst's block (the review API's): the review queue, the
            # status lists and the dossier then agree on the device.
            _review_action(store, entity_id, ActionRequest(action="block", reason=reason, hours=hours), actor)
        else:
            store.set_ban(kind, entity_id, reason=reason, actor=actor, until_ms=until)
            _audit(store, actor, "block", f"{kind}:{entity_id}", reason, {"until": until or None})
    click.echo(f"banned {kind} {entity_id}" + (f" for {hours:g} h" if hours else ""))


@cli.command()
@click.argument("kind", type=KIND)
@click.argument("entity_id")
@click.option("--reason", default="lifted from the command line", help="Why (for the audit trail).")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who lifts it (for the record).")
def unban(kind: str, entity_id: str, reason: str, actor: str) -> None:
    """Lift a ban."""
    entity_id = _entity(kind, entity_id)
    with _store() as store:
        if kind == "device":
            try:
                _review_action(store, entity_id, ActionRequest(action="unblock", reason=reason), actor)
                lifted = True
            except Conflict:  # (not blocked)
                lifted = False
        else:
            lifted = store.clear_ban(kind, entity_id)
            if lifted:
                _audit(store, actor, "unblock", f"{kind}:{entity_id}", reason, {})
    click.echo(f"unbanned {kind} {entity_id}" if lifted else f"{kind} {entity_id} was not banned")


def _review_action(store: RedisStore | ClusterStore, device_id: str, req: ActionRequest, actor: str) -> None:
    """A device's ban or unban through the review actions (audited there, actor ``cli:<name>``)."""
    # (apply() takes either client: it asks which one it was given)
    apply(cast(redis.Redis, store.client), device_id, req, actor=f"cli:{actor}",
          now_ms=now_ms(ServerClock(), store.client))


def _entity(kind: str, entity_id: str) -> str:
    """``entity_id`` as decisions see it: an ip in its one spelling, an id
    that a decision can carry (the API's rules); a ban that no decision can
    match is refused rather than written."""
    if kind == "ip":
        try:
            return canonical_ip(entity_id)
        except ValueError as exc:
            raise click.BadParameter(f"{entity_id!r} {exc}", param_hint="ENTITY_ID") from None
    if not valid_id(entity_id):
        raise click.BadParameter(f"{entity_id!r} is no {kind} id: 1 to {MAX_ID_LENGTH} characters, not blank, "
                                 "no control characters", param_hint="ENTITY_ID")
    return entity_id


def _audit(store: RedisStore | ClusterStore, actor: str, action: str, entity: str, reason: str,
           details: dict[str, Any]) -> None:
    """An operator's ban or unban goes in the audit trail, as an analyst's does (actor ``cli:<name>``)."""
    audit.append(store.client, now_ms=now_ms(ServerClock(), store.client), actor=f"cli:{actor}", action=action,
                 entity=entity, reason=reason, details={**details, "source": "cli"})


def _instant(value: str | None) -> int | None:
    """ISO 8601 (with zone) or epoch seconds, as epoch ms."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds > 1e11:  # (the year 5138: milliseconds given for seconds)
            raise click.BadParameter(f"{value!r} looks like epoch milliseconds; give epoch seconds")
        return round(seconds * 1000)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither ISO 8601 nor epoch seconds") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a time zone (e.g. Z or +08:00)")
    return round(parsed.timestamp() * 1000)


@cli.command()
@click.option("--since", help="First decision time (ISO 8601 with zone, or epoch seconds).")
@click.option("--until", help="End (exclusive), same forms.")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="File (default: standard output).")
def export(since: str | None, until: str | None, output: Any) -> None:
    """Write the recorded share events as JSON lines (the batch job's format)."""
    first, end = _instant(since), _instant(until)
    if first is not None and end is not None and end <= first:
        raise click.BadParameter(f"{until!r} is not after --since {since!r}", param_hint="--until")
    with _store() as store:
        count = 0
        for line in read_events(store.client, first, end):
            output.write(orjson.dumps(line) + b"\n")
            count += 1
    click.echo(f"exported {count} share events", err=True)


@cli.command()
@click.option("--batch", default=1000, show_default=True,
              help="Stream entries read per call (per shard on Redis Cluster).")
@click.option("--name", default="signals-1", show_default=True, help="This consumer's name in the group.")
@click.option("--exit-with-parent", is_flag=True,
              help="Stop when the process that started this one is gone (gunicorn's master starts it so).")
def signals(batch: int, name: str, exit_with_parent: bool) -> None:
    """Follow the share-event stream and publish the real-time signals (docs/signals.md).

    One consumer works at a time for the whole service (a lease in Redis):
    started on several servers, the others stand by and take over when it stops.
    """
    import signal as os_signal
    import threading

    from riskservice.signals.lease import Lease, holder_name
    from riskservice.signals.runner import run_consumer

    settings = _settings()
    logs.configure(settings.log_level)
    parent = os.getppid()
    stopping = threading.Event()
    for sig in (os_signal.SIGTERM, os_signal.SIGINT):
        os_signal.signal(sig, lambda *_: stopping.set())
    with _store() as store:
        # On Redis Cluster (RISK_REDIS_CLUSTER=1) it follows every slot's shard of the stream.
        lease = Lease(store.client, holder_name())
        # An orphan (its master killed) would follow the stream forever.
        consumer = run_consumer(store.client, lease, stopping, name=name, batch=batch,
                                alive=(lambda: os.getppid() == parent) if exit_with_parent else None)
    # Logged, not printed: beside gunicorn its output joins the service's JSON log lines.
    logging.getLogger("riskservice.signals").info(
        "signal consumer stopped", extra={"events": consumer.engine.entries if consumer else 0,
                                          "writes": consumer.writes if consumer else 0})


@cli.command()
@click.option("--policy", "policy_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The candidate policy file.")
@click.option("--input", "input_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Exported share events (JSON lines).")
@click.option("--examples", default=10, show_default=True, help="Changed decisions to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--signals/--no-signals", default=True, show_default=True,
              help="Replay the real-time signals too (docs/signals.md).")
def backtest(policy_file: Path, input_file: Path, examples: int, as_json: bool, signals: bool) -> None:
    """Replay recorded events through a candidate policy on a scratch Redis."""
    try:
        policy = load_policy(policy_file)
        result = run_backtest(read_recorded(input_file), policy, examples=examples, signals=signals)
    except (PolicyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_report(result, str(input_file), str(policy_file)))


@cli.command()
@click.option("--input", "input_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Exported share events with labels (JSON lines).")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The current policy file (default: the service's, RISK_POLICY_FILE).")
@click.option("--target-precision", default=0.9, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Precision on labelled shares a proposed threshold must keep.")
@click.option("--scores", "scores_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="scores.jsonl of the batch job, to calibrate the graph-anomaly threshold too.")
@click.option("--output", "output", default="candidate-policy.yaml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write the candidate policy.")
@click.option("--rule", "rules", multiple=True, type=click.Choice(TUNABLE),
              help="Calibrate only this rule (repeatable; default: every tunable rule).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def calibrate(input_file: Path, policy_file: Path | None, target_precision: float, scores_file: Path | None,
              output: Path, rules: tuple[str, ...], as_json: bool) -> None:
    """Propose rule thresholds from labelled events; write a candidate policy and backtest it."""
    from riskservice.calibration import run

    try:
        result = run.calibrate(input_file, policy_file or _settings().policy_file, output,
                               target=target_precision, scores_file=scores_file, rules=rules)
    except (PolicyError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(run.dumps(result) if as_json else run.format_calibration(result))


@cli.command()
@click.option("--input", "input_file", type=click.Path(exists=True, path_type=Path),
              help="Share events as JSON lines (Spark: also a folder of them, or a Parquet folder); "
                   "without it, the events recorded in Redis (numpy engine only).")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for scores.jsonl (Spark: and scores.parquet) and the report.")
@click.option("--write-back", is_flag=True, help="Store the scores in Redis as a new version for the service.")
@click.option("--no-report", is_flag=True, help="Skip the HTML report and plots (numpy engine).")
@click.option("--seed", default=0, show_default=True, help="Seed of the randomised stages.")
@click.option("--engine", type=click.Choice(["numpy", "spark"]), default="numpy", show_default=True,
              help="One process (numpy) or Spark DataFrames (needs requirements-spark.txt and Java 17).")
@click.option("--master", default="local[*]", show_default=True,
              help="Spark master; 'submit' leaves it to spark-submit.")
@click.option("--shuffle-partitions", type=click.IntRange(min=1), help="Spark shuffle partitions (default Spark's).")
def score(input_file: Path | None, output_dir: Path, write_back: bool, no_report: bool, seed: int,
          engine: str, master: str, shuffle_partitions: int | None) -> None:
    """Score KOL and anomaly nodes of the share graph."""
    if engine == "spark":
        if input_file is None:
            raise click.UsageError("--engine spark reads --input (export the events first)")
        summary = _score_spark(input_file, output_dir, write_back, seed, master, shuffle_partitions)
    else:
        if input_file is not None and input_file.is_dir():
            raise click.BadParameter("the numpy engine reads one JSON-lines file", param_hint="--input")
        try:
            summary = _score_numpy(input_file, output_dir, write_back, no_report, seed)
        except ValueError as exc:  # (graphs' EventFormatError: a line that is no share event)
            raise click.ClickException(str(exc)) from None
    click.echo(orjson.dumps({k: v for k, v in summary.items() if k not in ("top_kol", "top_anomaly")},
                            option=orjson.OPT_INDENT_2).decode())


def _queue_threshold() -> float:
    settings = _settings()
    return load_policy(settings.policy_file, settings.presets_file).review.anomaly_threshold


def _score_numpy(input_file: Path | None, output_dir: Path, write_back: bool, no_report: bool,
                 seed: int) -> dict[str, Any]:
    from graphs.cases.files import read_cases
    from graphs.features.adjacency import distinct_recipients, node_adjacency
    from graphs.run import score_to_dir
    from riskservice.graph_store import write_back as store_scores

    with ExitStack() as stack:
        store = stack.enter_context(_store()) if (write_back or input_file is None) else None
        source: Any = input_file if input_file is not None else read_events(store.client)  # type: ignore[union-attr]
        summary, rows, table = score_to_dir(source, output_dir, progress=sys.stderr.isatty(), seed=seed,
                                            report=not no_report)
        if write_back:
            assert store is not None
            label = str(input_file) if input_file else "recorded events"
            summary["version"] = store_scores(store.client, rows, node_adjacency(table), source=label,
                                              queue_threshold=_queue_threshold(), reach=distinct_recipients(table),
                                              cases=read_cases(summary["cases_path"]))
    return summary


def _score_spark(input_file: Path, output_dir: Path, write_back: bool, seed: int, master: str,
                 shuffle_partitions: int | None) -> dict[str, Any]:
    try:
        from graphs.spark.run import spark_score
    except ImportError as exc:
        raise click.ClickException(f"the Spark engine needs requirements-spark.txt installed ({exc})") from None
    summary, res = spark_score(input_file, output_dir, master=None if master == "submit" else master,
                               shuffle_partitions=shuffle_partitions, seed=seed)
    if write_back:
        summary["version"] = spark_write_back(res, str(input_file))
    return summary


def spark_write_back(res: Any, source: str) -> int:
    """Write a Spark run's scores (``graphs.spark.run.SparkScores``) into the
    configured Redis or Redis Cluster from the executors; return the version."""
    from graphs.spark.writeback import write_back

    with _store() as store:
        cluster = isinstance(store, ClusterStore)
        # (a cluster is always named by REDIS_URL: only a single Redis is embedded)
        url = _settings().redis_url or _url_of(cast(RedisStore, store))
        return write_back(res, url, source=source, queue_threshold=_queue_threshold(), cluster=cluster)


def _url_of(store: RedisStore) -> str:
    """A URL executors can connect with, for the Redis this command is using."""
    kw = store.client.connection_pool.connection_kwargs
    if "path" in kw:
        return f"unix://{kw['path']}"
    return f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


@cli.command()
@click.option("--users", required=True, type=click.IntRange(min=100), help="How many users.")
@click.option("--seed", default=1, show_default=True)
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--profile", default="default", show_default=True,
              type=click.Choice(["default", "hard", "mixed"]),
              help="Which fraud and look-alikes to plant (docs/graph-signals.md).")
def simulate(users: int, seed: int, output_dir: Path, profile: str) -> None:
    """Generate a workload: organic cascades plus planted fraud, with ground truth."""
    from graphs.workload.simulate import write_workload

    click.echo(orjson.dumps(write_workload(output_dir, users, seed, profile=profile),
                            option=orjson.OPT_INDENT_2).decode())


@cli.command("rollback-scores")
def rollback_scores() -> None:
    """Make the previous version of the graph scores current again.

    The withdrawn run's marks leave the review queue: each device it flagged
    is ranked again by its refusal points and the restored scores. Exits 1
    when there is no previous version.
    """
    from riskservice.review.withdrawn import roll_back_scores

    settings = _settings()
    review = load_policy(settings.policy_file, settings.presets_file).review
    with _store() as store:
        flipped = roll_back_scores(store.client, review)
    if flipped is None:
        raise click.ClickException("no previous version of the graph scores: nothing rolled back")
    restored, withdrawn = flipped
    click.echo(f"graph scores rolled back to version {restored}"
               + (f"; version {withdrawn} withdrawn from the review queue and deleted" if withdrawn else ""))


if __name__ == "__main__":
    cli()
