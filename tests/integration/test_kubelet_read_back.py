"""The kubelet's read-back after a change, against real podman.

After it starts a container the kubelet reads the pod back by inspecting the
containers it knows (``read_pod``) instead of listing the node's every
container (``get_pod``, and the relist). Both must say the same thing, or a
status would flap between the read-back and the next relist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from peapod.api import Pod
from peapod.kubelet.env import Resolved
from peapod.kubelet.runtime import PodmanRuntime

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


@pytest.fixture
def runtime(podman_socket: str, tmp_path: Path) -> Iterator[PodmanRuntime]:
    made = PodmanRuntime(socket_path=podman_socket, state_dir=str(tmp_path / "state"),
                         memory_dir=str(tmp_path / "memory"))
    yield made
    for pod in made.list_pods():
        made.remove_pod(pod.uid)


def a_pod(*containers: dict) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": f"rb-{uuid.uuid4().hex[:6]}", "namespace": "default",
                     "uid": str(uuid.uuid4())},
        "spec": {"containers": list(containers)}})


def start(runtime: PodmanRuntime, pod: Pod, name: str, pod_id: str, command: list[str]) -> str:
    return runtime.run_container(pod, name, restart_count=0, pod_id=pod_id,
                                 resolved=Resolved(env={}, command=command, args=None))


def wait_exited(runtime: PodmanRuntime, uid: str, container_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = runtime.get_pod(uid)
        if found and any(c.id == container_id and c.state == "exited" for c in found.containers):
            return
        time.sleep(0.1)
    raise AssertionError(f"{container_id} did not exit")


def test_read_back_says_what_the_listing_says(runtime: PodmanRuntime) -> None:
    pod = a_pod({"name": "runs", "image": BUSYBOX},
                {"name": "fails", "image": BUSYBOX, "terminationMessagePolicy":
                 "FallbackToLogsOnError"})
    uid = pod.metadata.uid or ""
    pod_id = runtime.create_pod(pod)
    runs = start(runtime, pod, "runs", pod_id, ["sleep", "3600"])
    fails = start(runtime, pod, "fails", pod_id, ["sh", "-c", "echo broken; exit 3"])
    wait_exited(runtime, uid, fails)

    read = runtime.read_pod(uid, pod_id, [runs, fails])
    # a kubelet that never read these containers before lists them afresh
    listed = PodmanRuntime(socket_path=runtime.socket_path,
                           state_dir=str(runtime.state_dir)).get_pod(uid)
    assert read is not None and listed is not None
    assert read == listed
    by_name = {c.name: c for c in read.containers}
    assert by_name["runs"].state == "running" and by_name["runs"].started_at
    assert by_name["fails"].exit_code == 3 and by_name["fails"].finished_at
    assert by_name["fails"].message == "broken\n"
    assert read.ip and read.podman_id == pod_id


def test_read_back_of_a_sandbox_alone_and_of_a_removed_container(
        runtime: PodmanRuntime) -> None:
    pod = a_pod({"name": "c", "image": BUSYBOX})
    uid = pod.metadata.uid or ""
    pod_id = runtime.create_pod(pod)
    alone = runtime.read_pod(uid, pod_id, [])  # the infra container tells pod and address
    assert alone is not None and alone.containers == [] and alone.podman_id == pod_id
    assert alone.ip and alone.name == pod.metadata.name
    assert alone == runtime.get_pod(uid)

    gone = start(runtime, pod, "c", pod_id, ["sleep", "3600"])
    runtime.remove_container(gone)
    again = runtime.read_pod(uid, pod_id, [gone])
    assert again is not None and again.containers == []

    runtime.remove_pod(uid)
    assert runtime.read_pod(uid, pod_id, [gone]) is None


def test_the_infra_container_is_named_after_the_pod(runtime: PodmanRuntime) -> None:
    # so that the sandbox's address is one inspect by name, not a pod inspect first
    pod = a_pod({"name": "c", "image": BUSYBOX})
    pod_id = runtime.create_pod(pod)
    infra = runtime.api.get(f"/pods/{pod_id}/json").json()["InfraContainerID"]
    name = runtime.api.get(f"/containers/{infra}/json").json()["Name"]
    assert name == f"default_{pod.metadata.name}_{(pod.metadata.uid or '')[:8]}-infra"
