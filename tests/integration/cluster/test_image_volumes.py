"""``image`` volumes on real podman: an image's filesystem mounted read-only, pulled as a
container's image is (pull policy, ErrImagePull/ImagePullBackOff).

Uses the ``cluster`` fixture of conftest.py (apiserver, scheduler and a kubelet on real podman) and the
local test images only: nothing is pulled from a registry (none is reachable here, so a
reference that is not local fails its pull for real).
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration.cluster.test_kubelet import (
    apply,
    kubelet_exec,
    pod_manifest,
    podman_names,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events, status_of, waiting

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def image_pod(name: str, reference: str, **source: str) -> dict:
    return pod_manifest(name, [
        {"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
         "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "tools", "mountPath": "/tools"}]},
    ], volumes=[{"name": "tools", "image": {"reference": reference, **source}}],
        terminationGracePeriodSeconds=0)


async def test_an_image_volume_is_read_and_cannot_be_written(cluster):
    name = f"imgvol-{uuid.uuid4().hex[:6]}"
    pod = await apply(cluster, image_pod(name, BUSYBOX, pullPolicy="Never"))
    assert pod["spec"]["volumes"][0]["image"] == {"reference": BUSYBOX, "pullPolicy": "Never"}
    await wait_pod(cluster, name, running)
    # the image's own files: printenv is the test image's script (images/busybox/bin)
    code, out = await kubelet_exec(cluster, name, "c", ["head", "-n", "1", "/tools/bin/printenv"])
    assert code == 0 and out.startswith("#!"), (code, out)
    code, out = await kubelet_exec(cluster, name, "c", [
        "sh", "-c", "touch /tools/written 2>&1; echo rc=$?"])
    assert "Read-only file system" in out and "rc=1" in out, out
    mounted = await kubelet_exec(cluster, name, "c", ["cat", "/proc/mounts"])
    tools = [line.split() for line in mounted[1].splitlines() if line.split()[1] == "/tools"]
    assert tools and "ro" in tools[0][3].split(","), mounted


async def test_an_image_volume_that_cannot_be_pulled_holds_the_pod_back(cluster):
    never, pulled = (f"imgvol-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("never", "pull"))
    await apply(cluster, image_pod(never, "localhost/no-such-image:3", pullPolicy="Never"))
    # the default policy of a tagged reference is IfNotPresent: it is pulled, and fails
    await apply(cluster, image_pod(pulled, "localhost/no-such-image:4"))
    pod = await wait_pod(cluster, never, waiting("ErrImageNeverPull"))
    assert pod["status"]["phase"] == "Pending"
    assert status_of(pod)["state"]["waiting"]["message"] == \
        'Container image "localhost/no-such-image:3" is not present with pull policy of Never'
    pod = await wait_pod(cluster, pulled, waiting("ImagePullBackOff"), timeout=60)
    assert pod["spec"]["volumes"][0]["image"]["pullPolicy"] == "IfNotPresent"
    events = await pod_events(cluster, pulled)
    assert any(e.reason == "Failed" and e.message.startswith(
        'Failed to pull image "localhost/no-such-image:4": ') for e in events), events
    for p in (never, pulled):  # no app container was created
        uid = (await wait_pod(cluster, p, lambda _: True))["metadata"]["uid"]
        assert all(c.endswith("-infra") for c in podman_names(uid))
