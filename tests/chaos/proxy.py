"""A TCP link the test can cut and heal: a kubelet reaches nats-server only through it.

In-process and threaded, because the test must cut the link at a moment it
chooses and heal it at another, for one kubelet only, without root or the
host's firewall (iptables rules or a network namespace would touch the
machine's network, which the tests may not): a proxy on 127.0.0.1 between
that kubelet and nats-server is the smallest thing that does it.

``cut()`` is a link that went down: every open connection is closed on both
sides and new connections are refused (the listening socket is closed), so
the kubelet's client knows it is cut off and tries to reconnect, as after a
Wi-Fi drop or a server's reboot. A link that silently drops packets instead
is not simulated: nats-py would notice it only once two of its pings, sent
120 s apart by default, went unanswered; see docs/reliability.md.
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

    heal = start
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
