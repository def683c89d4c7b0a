"""Extended resources end to end: a kubelet advertises them, the scheduler counts them.

The real kubelet (restarted with ``extended_resources``, as ``--extended-resources``
does), apiserver and scheduler over NATS, pods on real podman, and the real
``peapod describe node``.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_kubelet import (
    apply,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_lifecycle import BUSYBOX
from tests.integration.cluster.test_scheduler import events_for

pytestmark = pytest.mark.podman

DONGLE = "example.com/dongle"


def dongles(name: str, count: int) -> dict:
    return pod_manifest(name, [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                "resources": {"limits": {DONGLE: str(count)}}}],
                        terminationGracePeriodSeconds=0)


async def advertise_dongles(ctx: dict, count: str) -> dict:
    """Restart the cluster's kubelet with ``--extended-resources example.com/dongle=count``;
    the Node's status once it advertises them and is Ready."""
    node, admin = ctx["node"], ctx["admin"]
    await node.halt()
    node.extended_resources = {DONGLE: count}
    node.start()
    for _ in range(100):
        status = (await request(admin, s.api("nodes", "get"), {"name": "node-a"}))["status"]
        if status["allocatable"].get(DONGLE) == count and \
                status["conditions"][0]["status"] == "True":
            break
        await asyncio.sleep(0.1)
    return status


async def test_a_node_advertises_extended_resources_and_the_scheduler_counts_them(
        cluster, apiserver, tmp_path):
    admin = cluster["admin"]
    status = await advertise_dongles(cluster, "2")
    assert status["capacity"][DONGLE] == "2" and status["allocatable"][DONGLE] == "2"
    first, second = (f"dongle-{i}-{uuid.uuid4().hex[:6]}" for i in range(2))
    await apply(cluster, dongles(first, 2))
    await wait_pod(cluster, first, running, timeout=90)
    await apply(cluster, dongles(second, 1))
    for _ in range(100):
        failed = [e for e in await events_for(admin, second) if e["reason"] == "FailedScheduling"]
        if failed:
            break
        await asyncio.sleep(0.1)
    assert failed[0]["message"] == (  # equal priority: nothing to preempt
        "0/1 nodes are available: 1 Insufficient example.com/dongle. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod.")
    pod = await wait_pod(cluster, second, lambda p: True)
    assert not pod["spec"].get("nodeName")
    described = await cli_for(apiserver, tmp_path)("describe", "node", "node-a")
    assert described.code == 0, described.err
    lines = [" ".join(line.split()) for line in described.out.splitlines()]
    assert f"{DONGLE}: 2" in lines  # capacity and allocatable
    assert f"{DONGLE} 2 2" in lines  # allocated: requests and limits
    # the kubelet reports the filesystem of its state directory as ephemeral-storage, and
    # Allocated resources has kubectl's row for it, before the extended resources
    assert sum(bool(re.fullmatch(r"ephemeral-storage: [1-9]\d*Ki", line)) for line in lines) == 2
    assert lines.index("ephemeral-storage 0 (0%) 0 (0%)") < lines.index(f"{DONGLE} 2 2")

    # spec.nodeName skips the scheduler: the kubelet's admission refuses the third dongle,
    # in Kubernetes' words, and runs nothing of it
    direct = f"dongle-direct-{uuid.uuid4().hex[:6]}"
    await apply(cluster, {**dongles(direct, 1), "spec": {
        **dongles(direct, 1)["spec"], "nodeName": "node-a"}})
    pod = await wait_pod(cluster, direct, lambda p: p.get("status", {}).get("phase") == "Failed")
    message = f"Node didn't have enough resource: {DONGLE}, requested: 1, used: 2, capacity: 2"
    assert (pod["status"]["reason"], pod["status"]["message"]) == (
        f"OutOf{DONGLE}", f"Pod was rejected: {message}")
    rejected = [(e["type"], e["message"]) for e in await events_for(admin, direct)
                if e["reason"] == f"OutOf{DONGLE}"]
    assert rejected == [("Warning", message)]
    assert not any(c.get("containerID") for c in pod["status"].get("containerStatuses") or [])


def hungry(name: str, **resources: str) -> dict:
    return pod_manifest(name, [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                "resources": {"requests": resources}}],
                        terminationGracePeriodSeconds=0)


async def test_ephemeral_storage_and_cpu_are_counted_by_the_scheduler_and_the_kubelet(
        cluster):
    admin = cluster["admin"]
    node = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    storage = node["status"]["allocatable"]["ephemeral-storage"]
    assert storage.endswith("Ki") and int(storage[:-2]) > 0
    capacity = int(storage[:-2]) * 1024
    cpus = int(node["status"]["allocatable"]["cpu"])

    # the scheduler: more ephemeral-storage than the node has
    too_big = f"disk-{uuid.uuid4().hex[:6]}"
    await apply(cluster, hungry(too_big, **{"ephemeral-storage": f"{capacity + 1}"}))
    for _ in range(100):
        failed = [e for e in await events_for(admin, too_big) if e["reason"] == "FailedScheduling"]
        if failed:
            break
        await asyncio.sleep(0.1)
    assert failed[0]["message"].startswith(
        "0/1 nodes are available: 1 Insufficient ephemeral-storage."), failed[0]["message"]

    # one that fits runs; the kubelet counts it when the next comes with spec.nodeName
    fits, direct, cpu = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("disk", "diskd", "cpud"))
    await apply(cluster, hungry(fits, **{"ephemeral-storage": "1Mi"}))
    await wait_pod(cluster, fits, running, timeout=90)
    for name, resources in ((direct, {"ephemeral-storage": f"{capacity}"}),
                            (cpu, {"cpu": f"{cpus + 1}"})):
        manifest = hungry(name, **resources)
        manifest["spec"]["nodeName"] = "node-a"
        await apply(cluster, manifest)
    expected = {
        direct: ("OutOfephemeral-storage", "Node didn't have enough resource: ephemeral-storage, "
                 f"requested: {capacity}, used: {1024 * 1024}, capacity: {capacity}"),
        cpu: ("OutOfcpu", f"Node didn't have enough resource: cpu, requested: {(cpus + 1) * 1000}"
              f", used: 0, capacity: {cpus * 1000}")}
    for name, (reason, message) in expected.items():
        pod = await wait_pod(cluster, name, lambda p: p.get("status", {}).get("phase") == "Failed")
        assert (pod["status"]["reason"], pod["status"]["message"]) == (
            reason, f"Pod was rejected: {message}")
