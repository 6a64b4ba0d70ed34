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

from riskservice.limits.native import COMMAND, MODULE, NATIVE_VERSION, NativeMode, NativeUnavailable, loaded_version

__all__ = ["NativePath", "is_unknown_command"]

log = logging.getLogger("riskservice.limits.native")


def is_unknown_command(exc: Exception) -> bool:
    """True for Redis' reply to a command it does not have (``ERR unknown command ...``).

    >>> is_unknown_command(Exception("unknown command `RISK.DECIDE`, with args beginning with: "))
    True
    """
    return str(exc).lower().removeprefix("err ").startswith("unknown command")


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
