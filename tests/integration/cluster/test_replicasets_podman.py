"""ReplicaSets on real podman with two kubelets, and a controller manager killed with SIGKILL.

The apiserver, the scheduler and two kubelets (``node-a``, ``node-b``, each
its own state directory, so each owns only its podman pods) run in-process;
the controller manager runs as its own process (``python -m
peapod.controllers.main``, its own NATS user), so the test can kill it with
SIGKILL at any moment, as the OOM killer or a power cut would, and start it
again. What must hold: the same end state, and never more pods (or podman
pods) than replicas once it settles.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.errors import KeyNotFoundError

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.errors import NotFound
from peapod.scheduler.main import run as run_scheduler
from tests.integration.cluster.nodes import Node
from tests.integration.cluster.test_kubelet import running
from tests.integration.cluster.test_replicasets import pods_of, replicaset, update_rs
from tests.waiting import eventually

pytestmark = pytest.mark.podman

IMAGE = "localhost/peapod-busybox:latest"


class ControllerManagerProcess:
    """A component as its own process (the controller manager unless ``module`` says)."""

    def __init__(self, creds_file: Path, log_file: Path, *, args: tuple[str, ...] = (),
                 module: str = "peapod.controllers.main") -> None:
        self.creds_file, self.log_file, self.args = creds_file, log_file, args
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--creds", str(self.creds_file),
                 *self.args],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "it died on its own"
        self.proc.kill()
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
async def fleet(apiserver, podman_socket, tmp_path) -> AsyncIterator[dict]:
    creds, admin = apiserver["creds"], apiserver["admin"]
    stop = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(creds["scheduler"], stop=stop))
    nodes = [Node(creds, name, tmp_path / f"kubelet-{name}", podman_socket)
             for name in ("node-a", "node-b")]
    for node in nodes:
        node.start()
    manager = ControllerManagerProcess(tmp_path / "state" / "creds" / "controller-manager.json",
                                       tmp_path / "controller-manager.log")
    manager.start()

    async def both_registered() -> bool:
        try:
            return len(await request(admin, s.api("nodes", "list"), {})) == 2
        except NotFound:
            return False
    await eventually(both_registered, "two nodes registered")
    leases = await jetstream(admin).key_value(s.LEASE_BUCKET)

    async def both_heartbeating() -> bool:  # what the scheduler counts as a live node
        try:
            return all([await leases.get(name) for name in ("node-a", "node-b")])
        except KeyNotFoundError:
            return False
    # before any pod: a node the scheduler does not yet know to be alive gets none of a
    # ReplicaSet's pods, and a test expecting one on each node would wait in vain
    await eventually(both_heartbeating, "two nodes heartbeating")
    handles = {"admin": admin, "manager": manager, "nodes": nodes, "creds": creds}
    try:
        yield handles
    finally:
        handles["manager"].stop()  # a test may have replaced it with its own
        for node in nodes:  # each kubelet stops and its podman pods go at once
            await node.halt_and_clear()
        stop.set()
        await asyncio.wait_for(scheduler, 10)


def sleeper_rs(replicas: int) -> dict:
    manifest = replicaset(replicas=replicas)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container.update(image=IMAGE, command=["sleep", "3600"])
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    return manifest


def podman_pods_of(uids: set[str]) -> int:
    out = subprocess.run(["podman", "pod", "ps", "--format", "{{.Labels}}"], capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if any(uid in line for uid in uids))


async def settled(admin, replicas: int) -> bool:
    pods = await pods_of(admin)
    if len(pods) != replicas or not all(running(p) for p in pods):
        return False
    status = (await request(admin, s.api("replicasets", "get"), {
        "namespace": "default", "name": "web"})).get("status") or {}
    return status.get("readyReplicas") == replicas and status.get("replicas") == replicas


async def test_replicas_spread_over_two_nodes_and_run(fleet):
    admin = fleet["admin"]
    await request(admin, s.api("replicasets", "create"), {"object": sleeper_rs(4)})
    await eventually(lambda: settled(admin, 4), "4 running and ready", timeout=90)
    pods = await pods_of(admin)
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-a", "node-a", "node-b", "node-b"]
    uids = {p["metadata"]["uid"] for p in pods}
    assert podman_pods_of(uids) == 4


async def test_kill_9_of_the_controller_manager_never_doubles_a_pod(fleet, tmp_path):
    admin = fleet["admin"]
    # without leader election: a restarted manager would first wait out the lease its killed
    # self still holds (15 s, each time); test_leader_election.py tests that takeover
    fleet["manager"].stop()
    manager = ControllerManagerProcess(fleet["manager"].creds_file, tmp_path / "cm-alone.log",
                                       args=("--leader-elect=false",))
    manager.start()
    fleet["manager"] = manager
    await request(admin, s.api("replicasets", "create"), {"object": sleeper_rs(2)})
    await eventually(lambda: settled(admin, 2), "2 running", timeout=90)
    # scale up and kill it while it creates; scale down and kill it while it deletes
    for replicas, pause in ((6, 0.05), (3, 0.1), (5, 0.0)):
        await update_rs(admin, lambda rs, n=replicas: rs["spec"].update(replicas=n))
        await asyncio.sleep(pause)
        manager.kill()
        assert len(await pods_of(admin)) <= max(replicas, 6)
        manager.start()
        await eventually(lambda n=replicas: settled(admin, n), f"{replicas} running", timeout=90)
        pods = await pods_of(admin)
        assert len(pods) == replicas
        live = {p["metadata"]["uid"] for p in pods}
        assert podman_pods_of(live) == replicas
    assert manager.kills == 3
    await asyncio.sleep(1.5)  # settled means settled: nothing more is created
    assert len(await pods_of(admin)) == 5
