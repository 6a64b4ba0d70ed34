"""A tiny TCP proxy in front of the real service that misbehaves on purpose.

Each accepted connection follows the next step of a plan, then the proxy
forwards bytes faithfully (keep-alive included):

- ``forward``: pass bytes both ways until either side closes;
- ``close``: close the connection at once, before reading the request;
- ``reset_after_forward``: forward the request, read the service's whole
  answer, then reset the client's connection without relaying it (the
  service has counted the share; the client saw nothing);
- ``503``: answer ``503 Service Unavailable`` without forwarding;
- ``garbage``: answer ``200`` with a body that is not JSON;
- ``404``: answer ``404`` with an HTML page (a wrong path behind a web server).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable


def read_message(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 message with a Content-Length body (b"" at end of stream)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0) rather than a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Proxy:
    """Listens on a free local port and forwards to ``upstream_port``."""

    def __init__(self, upstream_port: int, plan: Iterable[str] = ()) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.plan = list(plan)
        self.accepted = 0
        self.steps: list[str] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so the accept loop notices stop()
        self.port = int(self.listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by its peer
                pass
            sock.close()
        for thread in threads:
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed by stop()
                return
            with self._lock:
                step = self.plan[self.accepted] if self.accepted < len(self.plan) else "forward"
                self.accepted += 1
                self.steps.append(step)
            conn.settimeout(None)
            self._spawn(self._handle, self._track(conn), step)

    def _handle(self, conn: socket.socket, step: str) -> None:
        try:
            if step == "close":
                reset(conn)
            elif step == "503":
                read_message(conn)
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
            elif step == "garbage":
                read_message(conn)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
                             b"Connection: close\r\n\r\nhello")
                conn.close()
            elif step == "404":
                read_message(conn)
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n"
                             b"Connection: close\r\n\r\nnot found")
                conn.close()
            elif step == "reset_after_forward":
                with socket.create_connection(self.upstream) as upstream:
                    upstream.sendall(read_message(conn))
                    read_message(upstream)  # the service answered: the share is counted
                reset(conn)
            else:
                upstream = self._track(socket.create_connection(self.upstream))
                self._spawn(self._pump, upstream, conn)
                self._pump(conn, upstream)
        except OSError:  # the peer went away, or stop() closed the socket
            conn.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
            target.shutdown(socket.SHUT_WR)
        except OSError:  # either side closed: the other pump or stop() cleans up
            pass
