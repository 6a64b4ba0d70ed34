"""Which path a store's decisions take: ``RISK.DECIDE`` (the native module)
or ``EVALSHA`` of decide.lua, and what made it change.

A store detects the module with ``MODULE LIST`` when it starts and on every
connection it opens, so a restart, a reconnect or a failover to a replica is
noticed on the connection that meets the new server. A decision sent to a
server that turns out to lack the command (an ``unknown command`` reply) is
sent again as ``EVALSHA`` in the same round trip: the path falls back to
Lua, never losing the decision; :attr:`NativePath.fallbacks` counts such
changes for ``risk_native_fallbacks_total``, and each is logged once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from riskservice.limits.native import COMMAND, MODULE, NATIVE_VERSION, NativeMode, NativeUnavailable, loaded_version

__all__ = ["NativeMasters", "NativePath", "is_lua_only", "is_unknown_command", "modules_on"]

log = logging.getLogger("riskservice.limits.native")


def is_unknown_command(exc: Exception) -> bool:
    """True for Redis' reply to a command it does not have (``ERR unknown command ...``).

    >>> is_unknown_command(Exception("unknown command `RISK.DECIDE`, with args beginning with: "))
    True
    """
    return str(exc).lower().removeprefix("err ").startswith("unknown command")


def modules_on(conn: Any) -> Any:
    """``MODULE LIST`` on a connection just made (a redis-py ``Connection``):
    the raw reply, or None when the server refuses ``MODULE`` (managed
    services), for :meth:`NativePath.observe`."""
    conn.send_command("MODULE", "LIST")
    try:
        return conn.read_response()
    except redis.ResponseError:
        return None


def is_lua_only(exc: Exception) -> bool:
    """True for the module's answer to a call only the script can make (an
    outcome of a record the previous release wrote): sent again as the
    script, and no sign that the module is missing.

    >>> is_lua_only(Exception("riskdecide: lua only: a record of the previous release"))
    True
    """
    return "riskdecide: lua only" in str(exc)


class NativePath:
    """The decision path of one store, and the module version it last saw.

    Parameters
    ----------
    mode : {"auto", "on", "off"}
        ``RISK_REDIS_NATIVE``: ``auto`` uses the module when the server has
        it at :data:`NATIVE_VERSION`; ``on`` also requires it at start-up
        (:meth:`require`); ``off`` never uses it.
    """

    def __init__(self, mode: NativeMode = "auto") -> None:
        self.mode = mode
        # Read on every decision without the lock (a bool's assignment is atomic).
        self.active = False
        # The module version the last detection found (None: no module, or not
        # detected yet; "unknown" only before Redis first answered).
        self.version: int | None = None
        self.detected = False
        self.fallbacks = 0
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """``native`` or ``lua``: what the next decision uses."""
        return "native" if self.active else "lua"

    def observe(self, modules: Any) -> None:
        """Take a ``MODULE LIST`` reply (None: the server refuses ``MODULE``,
        as managed services do) and switch the path accordingly."""
        if self.mode == "off":
            return
        version = None if modules is None else loaded_version(modules)
        with self._lock:
            was, before = self.active, self.version
            self.detected, self.version = True, version
            self.active = version == NATIVE_VERSION
            if self.active and not was:
                log.info("decisions use the native decide", extra={"redis_module": MODULE, "version": version})
            elif was and not self.active:
                self.fallbacks += 1
                log.warning("the native decide is gone: decisions use decide.lua",
                            extra={"redis_module": MODULE, "found_version": version, "wanted_version": NATIVE_VERSION})
            elif not self.active and version is not None and version != before:
                log.warning("the native decide has another version: decisions use decide.lua",
                            extra={"redis_module": MODULE, "found_version": version, "wanted_version": NATIVE_VERSION})

    def unknown_command(self) -> None:
        """The server answered ``unknown command`` to a ``RISK.DECIDE``: back
        to Lua until a new connection finds the module again."""
        with self._lock:
            if not self.active:
                return  # another call of the same batch already fell back
            self.active, self.version = False, None
            self.fallbacks += 1
        log.warning("redis does not know the native decide: decisions use decide.lua",
                    extra={"command": COMMAND})

    def require(self) -> None:
        """At start-up with ``mode="on"``: refuse a Redis that answered
        without the module at :data:`NATIVE_VERSION`.

        Raises
        ------
        NativeUnavailable
            Saying what was found and what to do.
        """
        if self.mode != "on" or not self.detected or self.active:
            return
        found = "no riskdecide module" if self.version is None else f"riskdecide version {self.version}"
        raise NativeUnavailable(
            f"RISK_REDIS_NATIVE=on but Redis has {found} (this service needs version {NATIVE_VERSION}): "
            "build it with `make native` and load it (loadmodule riskservice/limits/native/riskdecide.so), "
            "or set RISK_REDIS_NATIVE=auto to run decisions on decide.lua")

    def take_fallbacks(self) -> int:
        """Fallbacks since the last call (for a counter)."""
        with self._lock:
            count, self.fallbacks = self.fallbacks, 0
        return count

    def status(self) -> dict[str, object]:
        """For ``/readyz``: the path, the setting and the module version seen."""
        return {"path": self.path, "setting": self.mode, "module_version": self.version}


class NativeMasters:
    """The path of each master of a Redis Cluster: a step of a decision (or an
    outcome) goes to its master as the module's command when that master has
    the module at :data:`NATIVE_VERSION`, as ``EVALSHA`` of its script
    otherwise.

    Each master has its own :class:`NativePath` (so a master restarted
    without the module, or a replica promoted without it, falls back alone).
    ``RISK_REDIS_NATIVE=on`` requires the module on every master at start-up.

    Parameters
    ----------
    mode : {"auto", "on", "off"}
        As for :class:`NativePath`.
    """

    def __init__(self, mode: NativeMode = "auto") -> None:
        self.mode = mode
        self._paths: dict[str, NativePath] = {}
        self._lock = threading.Lock()

    def _path(self, name: str) -> NativePath:
        path = self._paths.get(name)
        if path is None:
            with self._lock:
                path = self._paths.setdefault(name, NativePath(self.mode))
        return path

    def uses(self, name: str) -> bool:
        """True when decisions on master ``name`` go to the module (read without a lock)."""
        path = self._paths.get(name)
        return path is not None and path.active

    def any_active(self) -> bool:
        """True when some master's decisions go to the module (read without a lock)."""
        return any(path.active for path in list(self._paths.values()))

    def observe(self, name: str, modules: Any) -> None:
        """Master ``name``'s ``MODULE LIST`` reply (None: ``MODULE`` refused)."""
        self._path(name).observe(modules)

    def unknown_command(self, name: str) -> None:
        """Master ``name`` answered ``unknown command`` to one of the module's commands."""
        self._path(name).unknown_command()

    def forget_others(self, names: set[str]) -> None:
        """Keep only the masters of the current slot map (a replaced master's path goes)."""
        with self._lock:
            self._paths = {name: path for name, path in self._paths.items() if name in names}

    @property
    def fallbacks(self) -> int:
        """Fallbacks not yet taken, over every master."""
        return sum(path.fallbacks for path in list(self._paths.values()))

    def take_fallbacks(self) -> int:
        """Fallbacks since the last call, over every master (for a counter)."""
        return sum(path.take_fallbacks() for path in list(self._paths.values()))

    def require(self) -> None:
        """At start-up with ``mode="on"``: refuse a cluster with a master that
        answered without the module at :data:`NATIVE_VERSION`.

        Raises
        ------
        NativeUnavailable
            Naming the first such master.
        """
        for name, path in sorted(self._paths.items()):
            try:
                path.require()
            except NativeUnavailable as exc:
                raise NativeUnavailable(f"redis master {name}: {exc}") from None

    def status(self) -> dict[str, object]:
        """For ``/readyz``: ``path`` native (every master), lua (none) or
        mixed, the setting, the module version when every master has the same
        one, and each master's path."""
        paths = dict(sorted(self._paths.items()))
        used = {path.path for path in paths.values()}
        versions = {path.version for path in paths.values()}
        return {"path": used.pop() if len(used) == 1 else ("mixed" if used else "lua"), "setting": self.mode,
                "module_version": versions.pop() if len(versions) == 1 else None,
                "masters": {name: path.path for name, path in paths.items()}}
