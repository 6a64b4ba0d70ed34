"""Command line: ``python -m riskservice <command>``.

Commands build only what they need: an operator's ban needs Redis, not the
web app or its API keys.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from config.settings import PROJECT_ROOT
from riskservice.embedded_redis import EmbeddedRedis
from riskservice.limits.client import connect
from riskservice.limits.store import RedisStore


@contextmanager
def _store() -> Iterator[RedisStore]:
    """The service's Redis; an embedded one this command had to start is stopped after."""
    url = os.environ.get("REDIS_URL") or None
    embedded = None
    if url is None:
        embedded = EmbeddedRedis(Path(os.environ.get("RISK_DATA_DIR") or PROJECT_ROOT / "var"))
        url = embedded.ensure()
    try:
        yield RedisStore(connect(url, budget_ms=2000))
    finally:
        if embedded is not None:
            embedded.stop()


@click.group()
def cli() -> None:
    """Share-risk service tools (Redis from REDIS_URL, else the embedded one)."""


KIND = click.Choice(["device", "user", "ip"])


@cli.command()
@click.argument("kind", type=KIND)
@click.argument("entity_id")
@click.option("--reason", required=True, help="Why; shown in every decision it blocks.")
@click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who bans (for the record).")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), help="Lift the ban after this long.")
def ban(kind: str, entity_id: str, reason: str, actor: str, hours: float | None) -> None:
    """Block every share of a device, user or ip."""
    until = int((time.time() + hours * 3600) * 1000) if hours else 0
    with _store() as store:
        store.set_ban(kind, entity_id, reason=reason, actor=actor, until_ms=until)
    click.echo(f"banned {kind} {entity_id}" + (f" for {hours:g} h" if hours else ""))


@cli.command()
@click.argument("kind", type=KIND)
@click.argument("entity_id")
def unban(kind: str, entity_id: str) -> None:
    """Lift a ban."""
    with _store() as store:
        lifted = store.clear_ban(kind, entity_id)
    click.echo(f"unbanned {kind} {entity_id}" if lifted else f"{kind} {entity_id} was not banned")


if __name__ == "__main__":
    cli()
