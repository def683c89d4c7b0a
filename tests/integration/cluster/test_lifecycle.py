"""A container's life on real podman: init containers, sidecars (and, later, probes and hooks).

Each test drives the real apiserver, scheduler and kubelet (the ``cluster``
fixture of test_kubelet.py) and reads what a user would: the pod's status,
the STATUS column ``get pods`` prints, and what the containers themselves saw.
"""

from __future__ import annotations

import uuid

import pytest

from peapod.api import Pod
from peapod.cli.printers import pod_status_reason
from tests.integration.cluster.test_kubelet import (  # noqa: F401 - cluster is a fixture
    apply,
    cluster,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


@pytest.fixture
def ctx(cluster: dict) -> dict:  # noqa: F811 - the fixture imported above
    """test_kubelet.py's cluster: apiserver, scheduler and a kubelet on real podman."""
    return cluster


def box(name: str, script: str, **fields: object) -> dict:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **fields}


def column(pod: dict) -> str:
    return pod_status_reason(Pod.model_validate(pod))[0]


def init_states(pod: dict) -> list[dict]:
    return [c.get("state", {}) for c in pod.get("status", {}).get("initContainerStatuses") or []]


async def test_init_containers_run_in_order_to_completion_before_the_app(ctx):
    name = f"init-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [
        box("app", "cat /work/log; sleep 3600", volumeMounts=[{"name": "w", "mountPath": "/work"}]),
    ], initContainers=[
        box("first", "sleep 2; echo first >> /work/log",
            volumeMounts=[{"name": "w", "mountPath": "/work"}]),
        box("second", "echo second >> /work/log",
            volumeMounts=[{"name": "w", "mountPath": "/work"}]),
    ], volumes=[{"name": "w", "emptyDir": {}}]))
    seen = set()

    def watch(pod: dict) -> bool:
        seen.add(column(pod))
        return running(pod)

    pod = await wait_pod(ctx, name, watch)
    assert "Init:0/2" in seen, seen  # the first init container sleeps 2 s: the column shows it
    assert [s["terminated"]["reason"] for s in init_states(pod)] == ["Completed", "Completed"]
    first, second = (s["terminated"] for s in init_states(pod))
    assert first["finishedAt"] <= second["startedAt"]
    assert all(c["ready"] for c in pod["status"]["initContainerStatuses"])
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Initialized"] == "True" and column(pod) == "Running"
    assert await kubelet_exec(ctx, name, "app", ["cat", "/work/log"]) == (0, "first\nsecond\n")


async def test_a_failing_init_container_fails_the_pod_under_never(ctx):
    name = f"initfail-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("app", "sleep 3600")],
                                      initContainers=[box("check", "exit 3")],
                                      restartPolicy="Never"))
    pod = await wait_pod(ctx, name, lambda p: p.get("status", {}).get("phase") == "Failed")
    assert column(pod) == "Init:Error"
    assert init_states(pod)[0]["terminated"]["exitCode"] == 3
    app = pod["status"]["containerStatuses"][0]
    assert app["state"]["waiting"]["reason"] == "PodInitializing" and "containerID" not in app


async def test_a_failing_init_container_crash_loops_under_on_failure(ctx):
    name = f"initloop-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("app", "sleep 3600")],
                                      initContainers=[box("check", "exit 1")],
                                      restartPolicy="OnFailure"))
    pod = await wait_pod(ctx, name, lambda p: column(p) == "Init:CrashLoopBackOff")
    status = pod["status"]["initContainerStatuses"][0]
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Pending"
