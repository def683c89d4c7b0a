"""The podman service a kubelet starts is not left behind when that kubelet is killed.

Real kubelet processes (``python -m peapod.kubelet.main``) on a podman socket of the test's
own, so that each starts a real ``podman system service`` nothing else uses. No NATS: the
kubelet starts podman before its first connection, and then keeps trying to connect (its
``nats_connect_failed`` log line says it got there). The fixture kills whatever service is
left on the socket, so that a failing test leaves nothing either.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peapod.bus.identity import Credentials, new_seed
from peapod.kubelet.runtime import podman_service_pid
from peapod.kubelet.service import start_ticks
from tests.natsd import free_port

pytestmark = [pytest.mark.podman, pytest.mark.timeout(180)]

SHIPPED_CONF = Path(__file__).parents[2] / "deploy" / "podman" / "containers.conf"


class Kubelets:
    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home, self.tmp_path = home, tmp_path
        self.socket = str(home / "podman.sock")
        self.state_dir = tmp_path / "kubelet"
        self.creds = tmp_path / "kubelet.json"
        Credentials(url=f"nats://127.0.0.1:{free_port()}", user="kubelet-node-a",
                    seed=new_seed()).save(self.creds)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, containers_conf: Path = SHIPPED_CONF) -> tuple[subprocess.Popen[bytes], Path]:
        """A kubelet process; returns it and its log file once it is past its podman start."""
        log = self.tmp_path / f"kubelet-{len(self.procs) + 1}.log"
        env = {**os.environ, "CONTAINERS_CONF": str(containers_conf)}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "peapod.kubelet.main", "--creds", str(self.creds),
                 "--node-name", "node-a", "--state-dir", str(self.state_dir),
                 "--podman-socket", self.socket], env=env, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        until(lambda: "nats_connect_failed" in log.read_text() or proc.poll() is not None,
              "the kubelet past its podman start", timeout=60)
        assert proc.poll() is None, log.read_text()
        return proc, log


def until(check: Callable[[], Any], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if b"=" in item)


def log_events(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


@pytest.fixture
def kubelets(tmp_path: Path) -> Iterator[Kubelets]:
    home = Path(f"/tmp/peapod-ps-{uuid.uuid4().hex[:8]}")  # a socket path under 108 bytes
    home.mkdir()
    made = Kubelets(home, tmp_path)
    try:
        yield made
    finally:
        for proc in made.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        own = str(home / "podman.sock")
        while (left := podman_service_pid(own)) is not None:  # what this test caused
            os.kill(left, signal.SIGKILL)
            until(lambda pid=left: start_ticks(pid) is None, "service killed", 10)
        shutil.rmtree(home, ignore_errors=True)


def test_a_service_left_by_a_killed_kubelet_is_adopted_and_stopped_by_the_next(kubelets):
    first, _ = kubelets.start()
    service = podman_service_pid(kubelets.socket)
    assert service is not None
    first.kill()  # kill -9: the kubelet cannot stop what it started
    first.wait(10)
    time.sleep(1)
    assert podman_service_pid(kubelets.socket) == service  # it lives on

    second, log = kubelets.start()
    assert podman_service_pid(kubelets.socket) == service  # the same one: nothing restarted
    adopted = [e for e in log_events(log) if e.get("event") == "podman_service_adopted"]
    assert adopted and adopted[0]["pid"] == service, log.read_text()

    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, log.read_text()
    until(lambda: podman_service_pid(kubelets.socket) is None,
          "the adopted service stopped with the kubelet", timeout=20)
    assert not (kubelets.state_dir / "podman-service.json").exists()


def test_a_service_left_with_a_configuration_since_deleted_is_replaced(kubelets, tmp_path):
    # as after a test run from a clone deleted since: its CONTAINERS_CONF is gone
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(SHIPPED_CONF, clone / "containers.conf")
    first, _ = kubelets.start(clone / "containers.conf")
    old = podman_service_pid(kubelets.socket)
    assert old is not None
    first.kill()
    first.wait(10)
    shutil.rmtree(clone)

    second, log = kubelets.start()
    new = podman_service_pid(kubelets.socket)
    assert new is not None and new != old, log.read_text()
    assert start_ticks(old) is None  # gone (or a zombie its new parent has not reaped yet)
    assert environ_of(new)["CONTAINERS_CONF"] == str(SHIPPED_CONF)
    replaced = [e for e in log_events(log) if e.get("event") == "podman_service_replaced"]
    assert replaced and replaced[0]["pid"] == old, log.read_text()
    assert replaced[0]["level"] == "warning"

    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, log.read_text()
    until(lambda: podman_service_pid(kubelets.socket) is None, "stopped with the kubelet", 20)


def test_a_service_the_kubelet_did_not_start_is_never_stopped(kubelets, podman_socket):
    # the shared session service answers on its socket: the kubelet uses it, records nothing
    kubelets.socket = podman_socket
    kubelet, log = kubelets.start(Path(os.environ.get("CONTAINERS_CONF", SHIPPED_CONF)))
    shared = podman_service_pid(podman_socket)
    kubelet.send_signal(signal.SIGTERM)
    assert kubelet.wait(30) == 0, log.read_text()
    assert shared is not None
    assert podman_service_pid(podman_socket) == shared
    assert not (kubelets.state_dir / "podman-service.json").exists()
