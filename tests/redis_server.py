"""A real redis-server for the tests, on a free port (no fakes).

The server runs daemonised with a pid file, like the cluster nodes of
tests/cluster_server.py: it is stopped, killed, paused and resumed by pid, and
``kill``/``stop`` wait until the process is really gone.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

import redis

from riskservice.embedded_redis import find_redis_server
from tests.cluster.nodes import poll, process_alive, send_signal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server process the tests can start, stop, pause and restart.

    ``modules``: Redis modules it loads at start (``--loadmodule`` each),
    e.g. the native decide; change the list before a restart to bring the
    server back with other modules. ``binary``: another redis-server (a
    bench comparing server versions).
    """

    def __init__(self, directory: Path, port: int | None = None, appendonly: bool = False,
                 replica_of: RedisServer | None = None, modules: Sequence[Path] = (),
                 binary: str | None = None) -> None:
        self.dir = directory
        self.binary = binary  # (None: the service's own choice, find_redis_server)
        self.modules = list(modules)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.pid: int | None = None

    @property
    def process(self) -> int | None:
        """The server's pid while it runs (None once stopped or killed)."""
        return self.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        """The same server over its unix socket."""
        return f"unix://{self.dir / 'redis.sock'}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    def start(self) -> RedisServer:
        self.pid_file.unlink(missing_ok=True)
        args = [self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--daemonize", "yes", "--pidfile", str(self.pid_file),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--logfile", str(self.dir / "redis.log"), "--unixsocket", str(self.dir / "redis.sock")]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        for module in self.modules:
            args += ["--loadmodule", str(module)]
        # The launcher forks the daemon and exits at once.
        subprocess.run(args, stdout=subprocess.DEVNULL, check=True, timeout=10)
        client = redis.Redis.from_url(self.url, socket_timeout=0.2, socket_connect_timeout=0.2)

        def answering() -> bool:
            if self.pid is None and self.pid_file.exists():
                text = self.pid_file.read_text().strip()
                self.pid = int(text) if text else None
            if self.pid is not None and not process_alive(self.pid):
                raise RuntimeError(f"redis-server exited; see {self.dir / 'redis.log'}")
            return self.pid is not None and bool(client.ping())

        try:
            poll(f"redis-server to answer (see {self.dir / 'redis.log'})", answering, 10)
        except BaseException:
            self.kill()
            raise
        finally:
            client.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def _current_pid(self) -> int | None:
        """Our pid, or the pid file's if start failed before we read it."""
        if self.pid is None and self.pid_file.exists():
            text = self.pid_file.read_text().strip()
            return int(text) if text.isdigit() else None
        return self.pid

    def kill(self) -> None:
        pid = self._current_pid()
        if pid is not None:
            send_signal(pid, signal.SIGKILL)
            poll(f"redis-server {pid} to exit", lambda: not process_alive(pid), 10)
        self.pid = None

    def stop(self) -> None:
        """Clean shutdown (flushes the AOF); killed if it takes more than 10 s."""
        pid = self._current_pid()
        if pid is not None:
            send_signal(pid, signal.SIGCONT)  # a paused server cannot shut down
            send_signal(pid, signal.SIGTERM)
            try:
                poll(f"redis-server {pid} to shut down", lambda: not process_alive(pid), 10)
            except RuntimeError:
                self.kill()
        self.pid = None

    def pause(self) -> None:
        assert self.pid is not None
        send_signal(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.pid is not None
        send_signal(self.pid, signal.SIGCONT)
