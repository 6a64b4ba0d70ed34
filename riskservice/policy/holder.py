"""The live policy: reloaded when its file changes or on SIGHUP, never replaced by a bad one.

A new file is validated whole before it replaces the running policy; a bad
one is refused, the old policy stays, and the error is logged and shown in
``/readyz`` and ``GET /v1/policy`` until a good file arrives. Each good policy
is also saved as the *last good* one in the data folder, so a worker that
starts (or restarts, as gunicorn's own reload does) while the file is bad
still serves the last good policy instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskservice.errors import PolicyError
from riskservice.policy.load import PRESETS_FILE, Policy, load_policy

log = logging.getLogger("riskservice.policy")


class PolicyHolder:
    """Holds the current :class:`Policy` of one process.

    Parameters
    ----------
    path : Path
        The policy file.
    data_dir : Path
        Where the last good copy is kept.
    """

    def __init__(self, path: Path, data_dir: Path,
                 on_change: Callable[[Policy | None, Policy], None] | None = None,
                 presets_file: Path = PRESETS_FILE) -> None:
        self.path = Path(path)
        self.presets_file = Path(presets_file)
        # Called with (old, new) after a reload that changed the version (to audit it).
        self.on_change = on_change
        self.last_good = Path(data_dir) / "policy.last-good.yaml"
        self.error: str | None = None
        self.loaded_at = time.time()
        self._lock = threading.Lock()
        self._signature = self._stat()
        try:
            self.current = load_policy(self.path, self.presets_file)
        except PolicyError as exc:
            if not self.last_good.exists():
                raise
            # Serve the last good policy rather than not at all, and say so.
            self.current = load_policy(self.last_good, self.presets_file)
            self.error = f"{exc} (serving the last good policy {self.current.version})"
            log.error("policy file refused at start", extra={"error": self.error})
        else:
            self._save_last_good()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _save_last_good(self) -> None:
        try:
            write_atomically(self.last_good, self.path.read_bytes())
        except OSError as exc:
            log.warning("cannot save the last good policy", extra={"error": str(exc)})

    def check(self) -> bool:
        """Reload if the file changed since the last look; True if a new policy is active."""
        signature = self._stat()
        if signature == self._signature:
            return False
        return self.reload(signature)

    def reload(self, signature: tuple[int, int, int] | None = None) -> bool:
        """Load the file now; keep the current policy if it is bad."""
        with self._lock:
            self._signature = signature or self._stat()
            try:
                policy = load_policy(self.path, self.presets_file)
            except PolicyError as exc:
                self.error = f"{exc} (still serving {self.current.version})"
                log.error("policy reload refused", extra={"error": self.error})
                return False
            previous, self.current = self.current, policy
            self.error, self.loaded_at = None, time.time()
            self._save_last_good()
        if previous.version != policy.version:
            log.info("policy reloaded", extra={"from": previous.version, "to": policy.version})
            if self.on_change is not None:
                try:
                    self.on_change(previous, policy)
                except Exception:  # the new policy is in force either way; say what failed
                    log.exception("policy change hook failed")
        return True

    def watch(self, interval_s: float) -> threading.Thread:
        """Check the file every ``interval_s`` seconds in a daemon thread."""

        def loop() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    self.check()
                except Exception:  # a watcher must never die
                    log.exception("policy watcher failed")

        thread = threading.Thread(target=loop, name="policy-watcher", daemon=True)
        thread.start()
        return thread

    def status(self) -> dict[str, Any]:
        policy = self.current
        return {"name": policy.name, "version": policy.version, "file": str(self.path),
                "loaded_at": self.loaded_at, "error": self.error}


def write_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` so that no reader or other writer sees half a file.

    Every gunicorn worker saves the last good policy on its own, at the same
    moment after a change: each writes a temporary file of its own (a unique
    name in the target's folder, so the rename stays on one file system),
    flushes it to disk, then renames it over the target. The last rename wins
    whole; a shared temporary name would let one worker rename another's
    half-written file.

    Parameters
    ----------
    target : Path
        The file to replace (its folder is created if missing).
    data : bytes
        Its new content.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
