"""The service's recommended Redis settings on a benchmark's servers.

Benchmarks measure Redis as docs/operations.md ("Your own Redis") asks it to
be configured, the settings the embedded server starts with
(``riskservice.embedded_redis.REDIS_TUNING``); ``--redis-defaults`` measures
Redis' own defaults instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import redis


def add_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--redis-defaults`` switch."""
    parser.add_argument("--redis-defaults", action="store_true",
                        help="leave Redis' settings at its defaults instead of the service's recommended ones "
                             "(riskservice.embedded_redis.REDIS_TUNING)")


def tune(clients: Iterable[redis.Redis], defaults: bool = False) -> str:
    """Apply the recommended settings to every server (none with ``defaults``);
    says which, for the report."""
    if defaults:
        return "Redis defaults"
    # (imported here: a script puts the repository on the path only once it runs)
    from riskservice.embedded_redis import REDIS_TUNING

    for client in clients:
        for name, value in REDIS_TUNING.items():
            client.config_set(name, value)
    return "recommended settings (" + ", ".join(f"{k} {v}" for k, v in REDIS_TUNING.items()) + ")"
