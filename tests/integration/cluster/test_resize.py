"""In-place resize (Kubernetes 1.33's ``pods/resize``) on real podman: a cpu resize with
``NotRequired`` updates the running container's cgroup, a memory resize with
``RestartContainer`` restarts it with the new limit, a resize the node cannot hold is
``PodResizePending`` (Infeasible, Deferred), and a bad resize changes nothing.

Uses the ``cluster`` fixture of conftest.py (apiserver, scheduler and a kubelet on real podman) and
the real ``peapod`` script for ``patch``.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Invalid
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_kubelet import (
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"
CPUS = os.cpu_count() or 1


def resizable(name: str, cpu: str = "100m") -> dict:
    return pod_manifest(name, [{
        "name": "app", "image": BUSYBOX, "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": cpu, "memory": "32Mi"},
                      "limits": {"cpu": "200m", "memory": "64Mi"}},
        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"},
                         {"resourceName": "memory", "restartPolicy": "RestartContainer"}]}],
        terminationGracePeriodSeconds=1)


def app(pod: dict) -> dict:
    return pod["status"]["containerStatuses"][0]


def conditions(pod: dict) -> dict[str, dict]:
    return {c["type"]: c for c in pod["status"].get("conditions") or []}


async def resize(ctx: dict, name: str, resources: dict) -> dict:
    return await request(ctx["admin"], s.api("pods", "resize"), {
        "namespace": "default", "name": name,
        "patch": {"spec": {"containers": [{"name": "app", "resources": resources}]}}})


async def cgroup(ctx: dict, name: str, path: str) -> str:
    code, out = await kubelet_exec(ctx, name, "app", ["cat", path])
    assert code == 0, out
    return out.strip()


async def test_cpu_is_updated_in_place_and_memory_restarts_the_container(cluster, apiserver,
                                                                          tmp_path):
    name = f"resize-{uuid.uuid4().hex[:6]}"
    await apply(cluster, resizable(name))
    pod = await wait_pod(cluster, name, running)
    first = app(pod)["containerID"]
    assert app(pod)["resources"] == {"requests": {"cpu": "100m", "memory": "32Mi"},
                                     "limits": {"cpu": "200m", "memory": "64Mi"}}
    assert app(pod)["allocatedResources"] == {"cpu": "100m", "memory": "32Mi"}
    assert await cgroup(cluster, name, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "20000"

    # cpu, NotRequired: through kubectl's command line; the same container, a new quota
    cli = cli_for(apiserver, tmp_path)
    patch = json.dumps({"spec": {"containers": [{"name": "app", "resources": {
        "limits": {"cpu": "300m"}}}]}})
    result = await cli("patch", "pod", name, "--subresource", "resize", "-p", patch)
    assert (result.code, result.out) == (0, f"pod/{name} patched\n"), result.err
    pod = await wait_pod(cluster, name, lambda p: (app(p).get("resources") or {}).get(
        "limits", {}).get("cpu") == "300m")
    assert app(pod)["containerID"] == first and app(pod)["restartCount"] == 0
    assert "PodResizeInProgress" not in conditions(pod) and "PodResizePending" not in conditions(pod)
    assert await cgroup(cluster, name, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "30000"
    assert pod["metadata"]["generation"] == 2

    # memory, RestartContainer: a new container with the new limit
    await resize(cluster, name, {"limits": {"memory": "128Mi"}})
    pod = await wait_pod(cluster, name, lambda p: running(p) and app(p)["restartCount"] == 1
                         and "PodResizeInProgress" not in conditions(p))
    assert app(pod)["resources"]["limits"] == {"cpu": "300m", "memory": "128Mi"}
    assert await cgroup(cluster, name, "/sys/fs/cgroup/memory/memory.limit_in_bytes") == \
        str(128 * 1024 * 1024)
    assert await cgroup(cluster, name, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "30000"


async def test_a_resize_the_node_cannot_hold_waits_and_a_bad_one_changes_nothing(cluster):
    name, hog = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("resize", "hog"))
    await apply(cluster, resizable(name))
    await apply(cluster, pod_manifest(hog, [{
        "name": "app", "image": BUSYBOX, "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": f"{CPUS * 1000 - 500}m"}}}],
        terminationGracePeriodSeconds=1))
    await wait_pod(cluster, name, running)
    await wait_pod(cluster, hog, running)

    # more cpu than the node has: Infeasible
    await resize(cluster, name, {"requests": {"cpu": f"{CPUS + 1}"}, "limits": {"cpu": f"{CPUS + 1}"}})
    pod = await wait_pod(cluster, name, lambda p: "PodResizePending" in conditions(p))
    pending = conditions(pod)["PodResizePending"]
    assert (pending["status"], pending["reason"], pending["message"]) == (
        "True", "Infeasible", f"Node didn't have enough capacity: cpu, requested: "
        f"{(CPUS + 1) * 1000}, capacity: {CPUS * 1000}")
    assert app(pod)["resources"]["requests"]["cpu"] == "100m"  # it runs as it did

    # more than is free beside the hog: Deferred, with the kubelet's admission message
    await resize(cluster, name, {"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}})
    pod = await wait_pod(cluster, name, lambda p: (conditions(p).get("PodResizePending") or {})
                         .get("reason") == "Deferred")
    assert conditions(pod)["PodResizePending"]["message"] == (
        f"Node didn't have enough resource: cpu, requested: 600, used: {CPUS * 1000 - 500}, "
        f"capacity: {CPUS * 1000}")
    assert app(pod)["allocatedResources"]["cpu"] == "100m"

    # the hog goes: the deferred resize is made
    await request(cluster["admin"], s.api("pods", "delete"), {
        "namespace": "default", "name": hog, "gracePeriodSeconds": 0})
    pod = await wait_pod(cluster, name, lambda p: "PodResizePending" not in conditions(p)
                         and (app(p).get("resources") or {}).get("requests", {}).get("cpu")
                         == "600m", timeout=30)
    assert app(pod)["restartCount"] == 0

    # refused, in Kubernetes' words, and nothing changes
    before = await request(cluster["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                    "name": name})
    refusals = {
        "spec: Invalid value: \"Guaranteed\": Pod QOS Class may not change as a result of "
        "resizing": {"requests": {"memory": "64Mi"}},
        "spec: Forbidden: only cpu and memory resources are mutable":
            {"limits": {"ephemeral-storage": "1Gi"}},
        "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed":
            {"limits": {"memory": None}},
    }
    for problem, change in refusals.items():
        with pytest.raises(Invalid) as info:
            await resize(cluster, name, change)
        assert problem in info.value.message, info.value.message
    with pytest.raises(Invalid) as info:
        await request(cluster["admin"], s.api("pods", "resize"), {
            "namespace": "default", "name": name,
            "patch": {"spec": {"containers": [{"name": "app", "image": "other"}]}}})
    assert "spec: Forbidden: only cpu and memory resources are mutable" in info.value.message
    after = await request(cluster["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                   "name": name})
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
