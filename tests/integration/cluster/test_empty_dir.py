"""emptyDir on real podman: a Memory emptyDir is shared by the pod's containers and lives in
memory; ``sizeLimit`` (on disk and in memory) evicts the pod that goes over it, as
Kubernetes' eviction manager does.

Uses the ``cluster`` fixture of conftest.py (apiserver, scheduler and a kubelet on real podman).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.integration.cluster.test_kubelet import (
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def sharing_pod(name: str, medium: str) -> dict:
    """A writer and a reader mounting one 1Mi emptyDir at different paths."""
    return pod_manifest(name, [
        {"name": "writer", "image": BUSYBOX, "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
        {"name": "reader", "image": BUSYBOX, "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "cache", "mountPath": "/mnt/shared"}]},
    ], volumes=[{"name": "cache", "emptyDir": {"medium": medium, "sizeLimit": "1Mi"}}],
        terminationGracePeriodSeconds=30)


def evicted(pod: dict) -> bool:
    return pod.get("status", {}).get("reason") == "Evicted"


async def test_empty_dirs_are_shared_and_evict_their_pod_past_their_size_limit(cluster):
    memory, disk = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("mem", "disk"))
    for name, medium in ((memory, "Memory"), (disk, "")):
        await apply(cluster, sharing_pod(name, medium))
    for name in (memory, disk):
        await wait_pod(cluster, name, running)
        # both containers see one directory; well under the limit, the pod keeps running
        assert await kubelet_exec(cluster, name, "writer", [
            "sh", "-c", "echo hello > /cache/note"]) == (0, "")
        assert await kubelet_exec(cluster, name, "reader", ["cat", "/mnt/shared/note"]) == \
            (0, "hello\n")
    code, mounts = await kubelet_exec(cluster, memory, "reader", ["cat", "/proc/mounts"])
    shared = [line.split() for line in mounts.splitlines() if line.split()[1] == "/mnt/shared"]
    assert code == 0 and shared and shared[0][2] == "tmpfs", mounts  # in memory
    await asyncio.sleep(11)  # one size check has passed them
    for name in (memory, disk):
        assert running(await wait_pod(cluster, name, running)), name

    # 2 MiB into a 1Mi emptyDir: evicted within a check (10 s), its containers stopped at once
    for name in (memory, disk):
        await kubelet_exec(cluster, name, "writer", [
            "dd", "if=/dev/zero", "of=/cache/big", "bs=1024", "count=2048"])
    for name in (memory, disk):
        pod = await wait_pod(cluster, name, lambda p: evicted(p) and p["status"]["phase"] == "Failed"
                             and not any("running" in c.get("state", {})
                                         for c in p["status"].get("containerStatuses") or []),
                             timeout=25)  # grace 0: a 30 s grace would not fit
        message = 'Usage of EmptyDir volume "cache" exceeds the limit "1Mi". '
        assert pod["status"]["message"] == message
        warnings = [(e.type, e.message) for e in await pod_events(cluster, name)
                    if e.reason == "Evicted"]
        assert warnings == [("Warning", message)], warnings
        # nothing starts again: still Failed a moment later
        await asyncio.sleep(1.5)
        assert evicted(await wait_pod(cluster, name, evicted))


async def test_ephemeral_storage_limits_evict_as_kubernetes_does(cluster):
    """The pod against the sum of its containers' limits, then each container against its own;
    a container's storage is its writable layer and its log."""
    whole, one = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("eph", "ephc"))
    limit = lambda size: {"limits": {"ephemeral-storage": size}}  # noqa: E731
    await apply(cluster, pod_manifest(whole, [
        {"name": "app", "image": BUSYBOX, "command": ["sleep", "3600"], "resources": limit("2Mi")}]))
    await apply(cluster, pod_manifest(one, [
        {"name": "small", "image": BUSYBOX, "command": ["sleep", "3600"], "resources": limit("1Mi")},
        {"name": "roomy", "image": BUSYBOX, "command": ["sleep", "3600"],
         "resources": limit("64Mi")}]))
    for name in (whole, one):
        await wait_pod(cluster, name, running)
    for name, container in ((whole, "app"), (one, "small")):  # 3 MiB into the writable layer
        assert (await kubelet_exec(cluster, name, container, [
            "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=3072"]))[0] == 0
    expected = {whole: "Pod ephemeral local storage usage exceeds the total limit of containers "
                       "2Mi. ",
                one: 'Container small exceeded its local ephemeral storage limit "1Mi". '}
    for name, message in expected.items():
        pod = await wait_pod(cluster, name, lambda p: evicted(p) and p["status"]["phase"] == "Failed",
                             timeout=25)
        assert pod["status"]["message"] == message
        warnings = [(e.type, e.message) for e in await pod_events(cluster, name)
                    if e.reason == "Evicted"]
        assert warnings == [("Warning", message)], warnings
