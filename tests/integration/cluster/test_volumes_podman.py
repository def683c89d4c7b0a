"""Persistent volumes on real podman: Kubernetes' task-pv-pod, and data that outlives its pod.

"Configure a Pod to Use a PersistentVolume for Storage": a hostPath volume
``task-pv-volume`` of class ``manual``, the claim ``task-pv-claim`` and a pod
mounting it at ``/usr/share/nginx/html`` (busybox instead of nginx: the
tests pull nothing). A file one pod writes through the claim is read by the
next pod using the same claim (read-only, so its writes are refused), and a
pod whose claim is missing or unbound stays Pending with Kubernetes' words.

Uses the ``cluster`` fixture of conftest.py (apiserver, scheduler and a kubelet on real
podman) and runs the controller manager's binder beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.controllers.main import run as run_controller_manager
from tests.integration.cluster.test_kubelet import (
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events
from tests.waiting import eventually

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


@pytest.fixture
async def binder(cluster, apiserver) -> AsyncIterator[dict]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_controller_manager(
        apiserver["creds"]["controller-manager"], stop=stop,
        controllers={"persistentvolume-binder"}))
    yield cluster
    stop.set()
    await asyncio.wait_for(task, 10)


def task_pv_pod(name: str, *, read_only: bool = False, command: list[str]) -> dict:
    claim: dict = {"claimName": "task-pv-claim", **({"readOnly": True} if read_only else {})}
    return pod_manifest(name, [
        {"name": "task-pv-container", "image": BUSYBOX, "command": command,
         "volumeMounts": [{"mountPath": "/usr/share/nginx/html", "name": "task-pv-storage"}]},
    ], volumes=[{"name": "task-pv-storage", "persistentVolumeClaim": claim}],
        terminationGracePeriodSeconds=1)


async def _create(admin, resource: str, obj: dict) -> dict:
    return await request(admin, s.api(resource, "create"), {"object": obj,
                                                             "namespace": "default"})


async def _phase(admin, resource: str, name: str) -> str:
    obj = await request(admin, s.api(resource, "get"), {"namespace": "default", "name": name})
    return (obj.get("status") or {}).get("phase", "")


async def test_task_pv_pod_writes_and_the_next_pod_reads(binder, tmp_path):
    admin = binder["admin"]
    data = tmp_path / "data"  # the page's /mnt/data, private to this test
    data.mkdir()
    await _create(admin, "persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "task-pv-volume", "labels": {"type": "local"}},
        "spec": {"storageClassName": "manual", "capacity": {"storage": "10Gi"},
                 "accessModes": ["ReadWriteOnce"], "hostPath": {"path": str(data)}}})

    # a pod whose claim does not exist yet waits, as Kubernetes says
    waiting = task_pv_pod("early", command=["sleep", "3600"])
    await apply(binder, waiting)

    async def unschedulable() -> str:
        found = [e.message for e in await pod_events(binder, "early")
                 if e.reason == "FailedScheduling"]
        return found[-1] if found else ""
    message = await eventually(unschedulable, "FailedScheduling for the missing claim")
    assert message == ('0/1 nodes are available: persistentvolumeclaim "task-pv-claim" not found. '
                       "preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                       "scheduling.")

    await _create(admin, "persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "task-pv-claim"},
        "spec": {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "3Gi"}}}})
    # once bound, the waiting pod is scheduled and runs with the volume mounted
    await wait_pod(binder, "early", running)
    assert await _phase(admin, "persistentvolumeclaims", "task-pv-claim") == "Bound"
    assert await kubelet_exec(binder, "early", "task-pv-container", [
        "sh", "-c", "echo 'Hello from Kubernetes storage' > /usr/share/nginx/html/index.html"]) \
        == (0, "")
    assert (data / "index.html").read_text() == "Hello from Kubernetes storage\n"
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "early",
                                                   "gracePeriodSeconds": 1})

    reader = task_pv_pod("reader", read_only=True, command=["sleep", "3600"])
    await apply(binder, reader)
    await wait_pod(binder, "reader", running)
    assert await kubelet_exec(binder, "reader", "task-pv-container", [
        "cat", "/usr/share/nginx/html/index.html"]) == (0, "Hello from Kubernetes storage\n")
    code, _ = await kubelet_exec(binder, "reader", "task-pv-container", [
        "sh", "-c", "echo x > /usr/share/nginx/html/other 2>/dev/null"])
    assert code != 0 and not (data / "other").exists()  # readOnly: true
