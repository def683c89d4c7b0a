"""A TCP link the test can cut and heal: a kubelet reaches nats-server only through it.

In-process and threaded, because the test must cut the link at a moment it
chooses and heal it at another, for one kubelet only, without root or the
host's firewall (iptables rules or a network namespace would touch the
machine's network, which the tests may not): a proxy on 127.0.0.1 between
that kubelet and nats-server is the smallest thing that does it.

``cut()`` is a link that went down: every open connection is closed on both
sides and new connections are refused (the listening socket is closed), so
the kubelet's client knows it is cut off and tries to reconnect, as after a
Wi-Fi drop or a server's reboot.

``stall()`` is a link that went silent (packets dropped, the other end's
power cut): nothing is closed, but nothing is forwarded any more, and new
connections are accepted and then hear nothing. The client finds out only
from its pings going unanswered (peapod's components ping every 20 s and
give up after two). ``heal`` ends either: a stalled link forwards again,
its dead connections closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.natsd import free_port

CHUNK = 65536


class LinkProxy:
    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.connections = 0  # accepted while the link was up
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stalled = threading.Event()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close every connection and refuse new ones until ``heal``."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def stall(self) -> None:
        """Forward nothing and close nothing until ``heal``: a silent link."""
        self._stalled.set()

    def heal(self) -> None:
        if self._stalled.is_set():
            self._stalled.clear()
            with self._lock:  # what was open while silent is broken for its client
                sockets, self._sockets = self._sockets, set()
            for sock in sockets:
                _close(sock)
        if self._listener is None:
            self.start()

    stop = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    continue
                self._sockets |= {client, upstream}
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                if not self._stalled.is_set():  # silent: dropped
                    dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets -= {src, dst}
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
