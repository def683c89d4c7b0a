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
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.bus.client import connect, jetstream
from peapod.bus.events import EventRecorder
from peapod.kubelet.agent import Kubelet
from peapod.kubelet.lastknown import LastKnown
from peapod.kubelet.runtime import LABEL_UID, PodmanRuntime
from tests.waiting import eventually

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



def offline_kubelet(podman_socket: str, state: Path, *, spool: bool = True) -> Kubelet:
    """A kubelet not yet connected (as at a boot with the control plane away) on real podman,
    whose last-known pods and (with ``spool``) waiting events are kept in ``state``."""
    offline = NATS()
    return Kubelet(node_name="node-a", nc=offline, js=jetstream(offline),
                   runtime=PodmanRuntime(socket_path=podman_socket, state_dir=str(state)),
                   events=EventRecorder.for_node(offline, "node-a", state if spool else None),
                   host_ip="127.0.0.1", last_known=LastKnown(state))


@contextlib.asynccontextmanager
async def relisting(kubelet: Kubelet) -> AsyncIterator[list[asyncio.Task]]:
    """The kubelet's relist loop (and the tasks a test adds to the list) until the block ends;
    then the kubelet stops as on any stop: its pods run on."""
    tasks = [asyncio.create_task(kubelet.relist())]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for record in kubelet.pods.values():
            if record.task:
                record.task.cancel()
        kubelet.close()


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
    kubelet = offline_kubelet(podman_socket, state, spool=False)
    nc = None
    try:
        async with relisting(kubelet) as tasks:
            with capture_logs() as logs:
                kubelet.start_offline(kubelet.last_known.load())  # type: ignore[union-attr]
                await eventually(lambda: len(running_containers_of(uid)) == 1, "started offline",
                                 timeout=60)
                # Created, Started: waiting for a connection (recorded just after podman's start,
                # which the wait above may see first)
                await eventually(lambda: kubelet.events.held >= 2, "Created and Started held",
                                 timeout=60)
                nc = await connect(apiserver["creds"]["kubelet-node-a"], name="kubelet")
                kubelet.attach(nc, jetstream(nc))
                tasks.append(asyncio.create_task(kubelet.watch_partition()))
                await eventually(lambda: not podman_pods_of(uid),
                                 "removed once the partition was read", timeout=60)
            assert [e["uid"] for e in logs if e["event"] == "last_known_pod_gone"] == [uid]
            await eventually(lambda: "default/stale" not in kubelet.pods, "forgotten", timeout=60)
    finally:
        await asyncio.to_thread(remove_pods_of, uid)
        if nc is not None:
            await nc.close()
