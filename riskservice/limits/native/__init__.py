"""The native decide: ``riskdecide``, a Redis module whose command
``RISK.DECIDE`` does what ``lua/decide.lua`` does (on Redis Cluster, the
device's slot's step of a split decision, as decide.lua does there).

It takes the same KEYS and ARGV as ``EVALSHA <decide.lua>``
(:class:`~riskservice.limits.keys.DecisionKeys`,
:class:`~riskservice.limits.decide_args.DecideArgv`) and gives the same
replies, at a fraction of the Redis CPU: a script pays for building its Lua
strings and tables on every call. The module is built from
``riskdecide.c`` and its parts beside this file (``make native``) and used only when the
server has it at :data:`NATIVE_VERSION` (``RISK_REDIS_NATIVE``; on Redis
Cluster per master); the Lua scripts stay the portable path (managed Redis
services load no modules). See docs/architecture.md, "The
native decide (riskdecide)".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

__all__ = ["COMMAND", "COMMANDS", "MODULE", "MODULE_FILE", "NATIVE_VERSION", "NativeMode", "NativeUnavailable",
           "built_module", "loaded_version"]

# The module's version (RISKDECIDE_VERSION in riskdecide.c; a test holds them
# equal). Raised whenever RISK.DECIDE's arguments, replies or writes change, so a
# server with an older module is not sent calls it would misread.
NATIVE_VERSION = 9
MODULE = "riskdecide"
COMMAND = "RISK.DECIDE"
# The module's commands by the script each does (same KEYS, ARGV and replies):
# a decision, a share's outcome, and on Redis Cluster the user's slot's steps.
COMMANDS = {"decide": COMMAND, "reserve": "RISK.RESERVE", "settle": "RISK.SETTLE", "outcome": "RISK.OUTCOME"}
# Where `make native` writes the module (git-ignored).
MODULE_FILE = Path(__file__).resolve().with_name("riskdecide.so")

# RISK_REDIS_NATIVE: auto (use it when the server has it), on (required), off (never).
NativeMode = Literal["auto", "on", "off"]


class NativeUnavailable(RuntimeError):
    """``RISK_REDIS_NATIVE=on`` and the Redis at start-up lacks the module at
    :data:`NATIVE_VERSION`."""


def built_module() -> Path | None:
    """The built module file, or None when this tree has none (no C compiler)."""
    return MODULE_FILE if MODULE_FILE.is_file() else None


def loaded_version(modules: Any) -> int | None:
    """The version of ``riskdecide`` in a ``MODULE LIST`` reply, or None.

    Takes the raw reply (a list of ``[name, <n>, ver, <v>]`` lists) or
    redis-py's parsed one (a list of dicts).

    >>> loaded_version([[b"name", b"riskdecide", b"ver", 1]])
    1
    >>> loaded_version([{"name": "search", "ver": 20603}]) is None
    True
    """
    for entry in modules or ():
        if isinstance(entry, dict):
            fields = {_text(k): v for k, v in entry.items()}
        else:
            fields = {_text(k): v for k, v in zip(entry[::2], entry[1::2], strict=False)}
        if _text(fields.get("name", b"")) == MODULE:
            return int(fields.get("ver", 0))
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
