"""Idle and slow-header connections against a real server (a slowloris crowd), for tests and benchmarks.

- **idle**: a TCP connection that never sends a byte;
- **dribbling**: a connection that sends a request line, then one header
  byte every ``interval_s``, never finishing its headers.

A background thread keeps the crowd at its size: a connection the server
closes (as it should, after its keep-alive or header time-out) is opened
again, so the pressure lasts as long as the crowd runs.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class SlowClients:
    """``idle`` silent and ``dribbling`` slow-header connections to ``host:port``, kept open while in use.

    Parameters
    ----------
    host, port : str, int
        The server.
    idle : int
        Connections that send nothing.
    dribbling : int
        Connections that send their headers one byte at a time, forever.
    interval_s : float
        Pause between two bytes of a dribbling connection.
    """

    HEAD = b"POST /v1/decisions HTTP/1.1\r\nHost: risk\r\nContent-Type: application/json\r\nX-Slow: "

    def __init__(self, host: str, port: int, idle: int, dribbling: int, interval_s: float = 0.5) -> None:
        self.address = (host, port)
        self.idle_target, self.dribbling_target, self.interval_s = idle, dribbling, interval_s
        self.idle: list[socket.socket] = []
        self.dribbling: list[socket.socket] = []
        self.reopened = 0
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self, first: bytes = b"") -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, timeout=2)
            if first:
                sock.sendall(first)
        except OSError:
            self.refused += 1
            return None
        sock.setblocking(False)
        return sock

    def _fill(self) -> None:
        while len(self.idle) < self.idle_target and not self._stop.is_set():
            sock = self._open()
            if sock is None:
                return
            self.idle.append(sock)
        while len(self.dribbling) < self.dribbling_target and not self._stop.is_set():
            sock = self._open(self.HEAD)
            if sock is None:
                return
            self.dribbling.append(sock)

    def start(self) -> SlowClients:
        """Open the whole crowd, then keep it up in the background."""
        self._fill()
        self._thread.start()
        return self

    @staticmethod
    def _closed_by_peer(sock: socket.socket) -> bool:
        try:
            return sock.recv(4096, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            for group, payload in ((self.idle, None), (self.dribbling, b"x")):
                for sock in list(group):
                    dead = self._closed_by_peer(sock)
                    if not dead and payload is not None:
                        try:
                            sock.send(payload)
                        except BlockingIOError:
                            pass
                        except OSError:
                            dead = True
                    if dead:
                        group.remove(sock)
                        sock.close()
                        self.reopened += 1
            self._fill()
            self._stop.wait(self.interval_s)

    def open_count(self) -> tuple[int, int]:
        """(idle, dribbling) connections open right now."""
        return len(self.idle), len(self.dribbling)

    def stop(self) -> None:
        """Close every connection and stop the background thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for sock in (*self.idle, *self.dribbling):
            sock.close()
        self.idle.clear()
        self.dribbling.clear()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

