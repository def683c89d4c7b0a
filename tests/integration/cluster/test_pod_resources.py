"""Pod-level resources (``spec.resources``) on real podman: the pod's cgroup gets the
limits, a container without limits of its own gets them too (as Kubernetes sets them), the
downward API and the status show them. Uses the ``cluster`` fixture (conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.integration.cluster.test_kubelet import (
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"
MIB_64 = 64 * 1024 * 1024


def pod_cgroup_limits(uid: str) -> tuple[int, int]:
    """The podman pod's memory limit and CPU quota, as podman set them."""
    name = subprocess.run(["podman", "pod", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={uid}"],
                          capture_output=True, text=True, check=True).stdout.split()[0]
    info = json.loads(subprocess.run(["podman", "pod", "inspect", name], capture_output=True,
                                     text=True, check=True).stdout)
    info = info[0] if isinstance(info, list) else info
    return int(info.get("memory_limit", 0)), int(info.get("cpu_quota", 0))


async def test_pod_level_limits_reach_the_pod_cgroup_its_containers_and_the_status(cluster):
    name = f"podres-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "free", "image": BUSYBOX, "command": ["sleep", "3600"],
         "env": [{"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {
             "resource": "limits.memory"}}}]},
        {"name": "own", "image": BUSYBOX, "command": ["sleep", "3600"],
         "resources": {"limits": {"memory": "32Mi"}}},
    ], resources={"limits": {"cpu": "500m", "memory": "64Mi"}}))
    pod = await wait_pod(cluster, name, running)
    # the pod-level request defaulted to the limit (no container requests cpu)
    assert pod["spec"]["resources"]["requests"]["cpu"] == "500m"
    assert pod["status"]["qosClass"] == "Guaranteed"  # pod-level limits of cpu and memory
    assert pod["status"]["podIPs"] == [{"ip": pod["status"]["podIP"]}]
    assert pod["status"]["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert pod_cgroup_limits(pod["metadata"]["uid"]) == (MIB_64, 50_000)
    cgroup_memory = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert await kubelet_exec(cluster, name, "free", ["cat", cgroup_memory]) == (0, f"{MIB_64}\n")
    assert await kubelet_exec(cluster, name, "own", ["cat", cgroup_memory]) == \
        (0, f"{32 * 1024 * 1024}\n")
    assert await kubelet_exec(cluster, name, "free", ["printenv", "MEM_LIMIT"]) == \
        (0, f"{MIB_64}\n")
