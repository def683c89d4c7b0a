"""A pod the node ran offline from its last-known pods, gone from the control plane meanwhile.

The kubelet starts with no connection: it runs the pod saved in its state
directory (real podman). Then it connects to the real nats-server and
apiserver, whose store and partition know nothing of that pod (deleted, and
its deletion marker compacted, while the node was away): once its partition
is read, the pod's containers are stopped and its podman pod removed. The
whole boot against a cut-off control plane is ``tests/chaos/test_offline_boot.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from nats.aio.client import Client as NATS
from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.bus.client import connect, jetstream
from peapod.bus.events import EventRecorder
from peapod.kubelet.agent import Kubelet
from peapod.kubelet.lastknown import LastKnown
from peapod.kubelet.runtime import LABEL_UID, PodmanRuntime

pytestmark = pytest.mark.podman


def podman_pods_of(uid: str) -> list[str]:
    out = subprocess.run(["podman", "pod", "ps", "-q", "--filter", f"label={LABEL_UID}={uid}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def running_containers_of(uid: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-q", "--filter", f"label={LABEL_UID}={uid}",
                          "--filter", "label=io.peapod.container.name"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def remove_pods_of(uid: str) -> None:
    """What the test made, by id, if it failed before the kubelet removed it."""
    for pod_id in podman_pods_of(uid):
        subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", pod_id], capture_output=True,
                       check=False)


async def until(check, what: str, timeout: float = 60) -> None:
    for _ in range(int(timeout * 5)):
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(what)


async def test_a_pod_run_offline_that_the_control_plane_no_longer_has_is_removed(
        apiserver, podman_socket, tmp_path):
    uid = str(uuid.uuid4())
    stale = Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stale", "namespace": "default", "uid": uid},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": "localhost/peapod-busybox:latest",
             "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}})
    state = tmp_path / "kubelet"
    state.mkdir()
    LastKnown(state).save([(stale, "Running")])
    offline = NATS()
    kubelet = Kubelet(node_name="node-a", nc=offline, js=jetstream(offline),
                      runtime=PodmanRuntime(socket_path=podman_socket, state_dir=str(state)),
                      events=EventRecorder.for_node(offline, "node-a"), host_ip="127.0.0.1",
                      last_known=LastKnown(state))
    tasks = [asyncio.create_task(kubelet.relist())]
    nc = None
    try:
        with capture_logs() as logs:
            kubelet.start_offline(kubelet.last_known.load())  # type: ignore[union-attr]
            await until(lambda: len(running_containers_of(uid)) == 1, "started offline")
            # Created, Started: waiting for a connection (recorded just after podman's start,
            # which the wait above may see first)
            await until(lambda: kubelet.events.held >= 2, "Created and Started held")
            nc = await connect(apiserver["creds"]["kubelet-node-a"], name="kubelet")
            kubelet.attach(nc, jetstream(nc))
            tasks.append(asyncio.create_task(kubelet.watch_partition()))
            await until(lambda: not podman_pods_of(uid), "removed once the partition was read")
        assert [e["uid"] for e in logs if e["event"] == "last_known_pod_gone"] == [uid]
        await until(lambda: "default/stale" not in kubelet.pods, "forgotten")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for record in kubelet.pods.values():
            if record.task:
                record.task.cancel()
        kubelet.close()
        await asyncio.to_thread(remove_pods_of, uid)
        if nc is not None:
            await nc.close()
