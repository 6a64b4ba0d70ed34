"""The nodes of the test Redis Cluster: ports, processes, and what they report.

Helpers for tests/cluster_server.py: finding ports whose cluster bus port is
free too, telling a live process from a dead one by pid, polling with a
deadline, and reading ``CLUSTER SLOTS`` / ``CLUSTER NODES`` from one node.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SLOTS = 16384
# The cluster bus listens on port + 10000, which must stay below 65536.
BUS_OFFSET = 10000
PORT_RANGE = (7000, 20000)

T = TypeVar("T")


class ClusterError(RuntimeError):
    """The test cluster could not be formed or did not converge in time."""


@dataclass
class Node:
    """One redis-server of the cluster."""

    port: int
    dir: Path
    role: str = "master"  # "master" or "replica"
    pid: int | None = None
    node_id: str = ""
    slots: list[tuple[int, int]] = field(default_factory=list)
    alive: bool = True

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    def client(self, timeout: float = 1.0) -> redis.Redis:
        """A plain client of this node alone (no redirects followed, no retries)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int, base_port: int | None = None) -> list[int]:
    """``count`` ports whose port and bus port (port + 10000) are both free.

    Starts at ``base_port`` or at a random point of 7000-20000, so parallel
    test sessions rarely race for the same ports.
    """
    low, high = PORT_RANGE
    start = base_port if base_port is not None else random.randrange(low, high)
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if port + BUS_OFFSET >= 65536:
            raise ClusterError(f"no free ports from {start}: the bus port would exceed 65535")
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            ports.append(port)
        port += 1
        if base_port is None and port >= high:
            port = low
    return ports


def process_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def poll(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Call ``check`` until it returns a value other than None/False, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (redis.RedisError, OSError):
            result = None
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)  # ok-sleep: waiting for real processes to converge


def cluster_slots(client: redis.Redis) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """``CLUSTER SLOTS`` as sorted ``(first, last, master port, replica ports)``."""
    rows = []
    # Each entry: first, last, [host, port, id] of the master, then one per replica.
    for first, last, master, *replicas in client.execute_command("CLUSTER SLOTS"):
        rows.append((int(first), int(last), int(master[1]), tuple(sorted(int(r[1]) for r in replicas))))
    return sorted(rows)


def cluster_nodes(client: redis.Redis) -> dict[int, dict[str, object]]:
    """``CLUSTER NODES`` by port: node_id, flags, master_id, slots (as redis-py parses it)."""
    raw = client.execute_command("CLUSTER NODES")
    return {int(addr.split("@")[0].rsplit(":", 1)[1]): info for addr, info in raw.items()}


def send_signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
