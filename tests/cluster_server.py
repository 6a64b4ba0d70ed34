"""A real Redis Cluster for the tests, formed from Python (no redis-cli needed).

Every node is the same redis-server binary the other tests use, run
daemonised with a pid file, so a node can be killed, paused (SIGSTOP) and
resumed (SIGCONT) by pid and teardown never leaves a process behind. The
cluster is formed the way ``redis-cli --cluster create`` does it: slots are
assigned with ``CLUSTER ADDSLOTS`` (Redis 6.2 has no ADDSLOTSRANGE), each
master gets a distinct config epoch, the nodes meet, replicas attach with
``CLUSTER REPLICATE``, and we wait until every node reports
``cluster_state:ok`` and all agree on the slot map.

A small ``cluster-node-timeout`` makes failover after a master dies take a
few seconds instead of the default 15 s and more.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis
from redis.cluster import ClusterNode as RedisPyNode
from redis.crc import key_slot

from riskservice.embedded_redis import find_redis_server
from tests.cluster.nodes import (
    SLOTS,
    ClusterError,
    Node,
    cluster_nodes,
    cluster_slots,
    free_cluster_ports,
    poll,
    process_alive,
    send_signal,
)

__all__ = ["SLOTS", "ClusterError", "Node", "RedisClusterServer", "process_alive"]

ADDSLOTS_CHUNK = 2000


class PortTaken(ClusterError):
    """A node could not bind its port (or its bus port)."""


class RedisClusterServer:
    """A Redis Cluster of daemonised redis-servers on free local ports.

    Parameters
    ----------
    directory : Path
        Each node keeps its pid file, log and cluster config under
        ``directory/<port>``.
    masters : int
        Number of masters; the 16384 slots are split evenly among them.
    replicas_per_master : int
        Replicas attached to every master (needed for failover).
    base_port : int, optional
        Look for free ports from here (default: a random start in 7000-20000).
    node_timeout_ms : int
        ``cluster-node-timeout``: how long a silent node takes to be failed.
    """

    def __init__(self, directory: Path, masters: int = 3, replicas_per_master: int = 0,
                 base_port: int | None = None, node_timeout_ms: int = 1000) -> None:
        if masters < 1 or replicas_per_master < 0:
            raise ValueError("need at least one master and no negative replica count")
        self.dir = Path(directory)
        self.masters = masters
        self.replicas_per_master = replicas_per_master
        self.base_port = base_port
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[Node] = []
        self._paused_ports: set[int] = set()

    @property
    def url(self) -> str:
        """A URL of a live node; a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self._live()[0].port}/0"

    def client(self, **kwargs: object) -> redis.RedisCluster:
        """A cluster client (follows MOVED/ASK) seeded with every live node."""
        startup = [RedisPyNode("127.0.0.1", n.port) for n in self._live()]
        return redis.RedisCluster(startup_nodes=startup, **kwargs)  # type: ignore[arg-type]

    def start(self, timeout: float = 30.0) -> RedisClusterServer:
        """Start the nodes, form the cluster and wait until it is healthy.

        On any failure every node already started is killed before the error
        propagates.
        """
        count = self.masters * (1 + self.replicas_per_master)
        for attempt in range(3):
            ports = free_cluster_ports(count, self.base_port)
            self.nodes = [Node(port=p, dir=self.dir / str(p),
                               role="master" if i < self.masters else "replica")
                          for i, p in enumerate(ports)]
            try:
                for node in self.nodes:
                    self._spawn(node)
                for node in self.nodes:
                    self._wait_started(node, timeout)
                self._form(timeout)
                return self
            except PortTaken:
                # Another test session took a port between our check and the bind.
                self.stop()
                if attempt == 2 or self.base_port is not None:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _spawn(self, node: Node) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        node.pid_file.unlink(missing_ok=True)
        args = [find_redis_server(), "--port", str(node.port), "--bind", "127.0.0.1",
                "--daemonize", "yes", "--pidfile", str(node.pid_file),
                "--logfile", str(node.dir / "redis.log"), "--dir", str(node.dir),
                "--cluster-enabled", "yes", "--cluster-config-file", str(node.dir / "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                # A replica takes over however long it was cut off from its master.
                "--cluster-replica-validity-factor", "0",
                # The masters that are up keep serving their slots while one is down.
                "--cluster-require-full-coverage", "no",
                "--appendonly", "no", "--save", ""]
        # The launcher forks the daemon and exits at once.
        subprocess.run(args, stdout=subprocess.DEVNULL, check=True, timeout=10)

    def _wait_started(self, node: Node, timeout: float) -> None:
        def started() -> bool:
            if node.pid is None and node.pid_file.exists():
                text = node.pid_file.read_text().strip()
                node.pid = int(text) if text else None
            if node.pid is None:
                # The daemon writes its pid file only once it listens.
                log = node.dir / "redis.log"
                if log.exists() and "Could not create server TCP listening socket" in log.read_text():
                    raise PortTaken(f"port {node.port} or {node.port + 10000} is taken; see {log}")
                return False
            with node.client(0.2) as c:
                return bool(c.ping())
        poll(f"redis-server on port {node.port} (see {node.dir / 'redis.log'})", started, timeout)

    def _form(self, timeout: float) -> None:
        masters = self.nodes[:self.masters]
        replicas = self.nodes[self.masters:]
        for node in self.nodes:
            with node.client() as c:
                node.node_id = c.execute_command("CLUSTER MYID").decode()
        per = SLOTS // self.masters
        for i, master in enumerate(masters):
            first = i * per
            last = SLOTS - 1 if i == self.masters - 1 else first + per - 1
            with master.client() as c:
                for chunk in range(first, last + 1, ADDSLOTS_CHUNK):
                    c.execute_command("CLUSTER ADDSLOTS", *range(chunk, min(chunk + ADDSLOTS_CHUNK, last + 1)))
                # Distinct epochs up front spare the cluster resolving collisions.
                c.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
            master.slots = [(first, last)]
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        for j, replica in enumerate(replicas):
            master = masters[j % self.masters]
            with replica.client() as c:
                # A replica can only follow a master it has heard of.
                poll(f"port {replica.port} to learn of {master.port}",
                     lambda c=c, m=master: cluster_nodes(c).get(m.port, {}).get("node_id") == m.node_id,  # type: ignore[misc]
                     timeout)
                c.execute_command("CLUSTER REPLICATE", master.node_id)
        poll("every node to report cluster_state:ok and agree on the slot map", self._converged, timeout)
        self.refresh()

    def _converged(self) -> bool:
        maps = []
        for node in self._live():
            with node.client() as c:
                if c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
                maps.append(cluster_slots(c))
        if any(m != maps[0] for m in maps):
            return False
        covered = sum(last - first + 1 for first, last, _, _ in maps[0])
        # Every live node, and no other, serves slots or replicates a master that does.
        listed = {row[2] for row in maps[0]} | {p for row in maps[0] for p in row[3]}
        return covered == SLOTS and listed == {n.port for n in self._live()}

    def _live(self) -> list[Node]:
        live = [n for n in self.nodes if n.alive and not self._paused(n)]
        if not live:
            raise ClusterError("no live node")
        return live

    def _paused(self, node: Node) -> bool:
        return node.port in self._paused_ports

    def refresh(self) -> None:
        """Read roles and slots of every node from a live node's ``CLUSTER NODES``."""
        with self._live()[0].client() as c:
            known = cluster_nodes(c)
        for node in self.nodes:
            info = known.get(node.port)
            if info is None:
                continue
            node.node_id = str(info["node_id"])
            node.role = "master" if "master" in str(info["flags"]).split(",") else "replica"
            node.slots = [(int(r[0]), int(r[-1])) for r in info["slots"]]  # type: ignore[attr-defined]

    def master_of(self, key: str | bytes) -> Node:
        """The node that currently serves ``key``'s slot."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        with self._live()[0].client() as c:
            rows = cluster_slots(c)
        port = next(row[2] for row in rows if row[0] <= slot <= row[1])
        return next(n for n in self.nodes if n.port == port)

    def kill(self, node: Node) -> None:
        """SIGKILL one node and wait until its process is gone."""
        if node.pid is not None:
            send_signal(node.pid, signal.SIGKILL)
            poll(f"pid {node.pid} to exit", lambda: not process_alive(node.pid or 0), 10)
        node.alive = False
        self._paused_ports.discard(node.port)

    def pause(self, node: Node) -> None:
        """SIGSTOP one node: it keeps its sockets but answers nothing."""
        assert node.pid is not None
        send_signal(node.pid, signal.SIGSTOP)
        self._paused_ports.add(node.port)

    def resume(self, node: Node) -> None:
        """SIGCONT a paused node."""
        assert node.pid is not None
        send_signal(node.pid, signal.SIGCONT)
        self._paused_ports.discard(node.port)

    def wait_for_failover(self, old_master: Node, timeout: float = 20.0) -> Node:
        """Wait until a replica serves every slot ``old_master`` had; return it.

        The cluster must also be ``ok`` again on every live node.
        """
        ranges = list(old_master.slots)
        if not ranges:
            raise ClusterError(f"port {old_master.port} served no slots")

        def taken_over() -> Node | None:
            if not self._converged():
                return None
            with self._live()[0].client() as c:
                rows = cluster_slots(c)
            owners = {row[2] for first, last in ranges for row in rows
                      if row[0] <= first and last <= row[1]}
            if len(owners) != 1 or old_master.port in owners:
                return None
            return next(n for n in self.nodes if n.port in owners)

        new_master = poll(f"a replica to take over the slots of port {old_master.port}", taken_over, timeout)
        self.refresh()
        return new_master

    def stop(self) -> None:
        """Kill every node by the pid in its pid file (or the one we saw), and wait until all are gone."""
        pids = []
        for node in self.nodes:
            pid = node.pid
            try:
                text = node.pid_file.read_text().strip()
                pid = int(text) if text else pid
            except (OSError, ValueError):
                pass
            if pid is not None:
                send_signal(pid, signal.SIGKILL)
                pids.append(pid)
            node.alive = False
        self._paused_ports.clear()
        poll("every node to exit", lambda: not any(process_alive(p) for p in pids), 10)

