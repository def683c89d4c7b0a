"""The real kubelet against real podman, with the real apiserver and scheduler over NATS.

Each test runs the three components in-process (so a failure shows one
traceback) against a nats-server configured with peapod's permissions, and
checks podman itself where the claim is about podman.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from peapod.api import Pod
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.replay import read_all
from peapod.errors import NotFound
from peapod.kubelet.runtime import PodmanRuntime
from tests.natsd import free_port

pytestmark = pytest.mark.podman


def podman_ids(uid: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label=io.peapod.pod.uid={uid}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def podman_inspect(container: str) -> dict:
    out = subprocess.run(["podman", "container", "inspect", container], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]


def recreate_unstarted(info: dict) -> str:
    """Replace an inspected container by one podman creates the same and never starts."""
    subprocess.run(["podman", "rm", "-f", "-t", "0", info["Id"]], capture_output=True, check=True)
    labels = [arg for k, v in info["Config"]["Labels"].items() for arg in ("--label", f"{k}={v}")]
    return subprocess.run(["podman", "create", "--pull", "never", "--pod", info["Pod"],
                           "--name", info["Name"], *labels, info["ImageName"], "sleep", "3600"],
                          capture_output=True, text=True, check=True).stdout.strip()


def podman_names(uid: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter",
                          f"label=io.peapod.pod.uid={uid}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


async def allow_privileged(ctx: dict, namespace: str = "default") -> None:
    """Label ``namespace`` for Pod Security level privileged (hostPort, hostPath, …)."""
    await request(ctx["admin"], s.api("namespaces", "apply"), {"object": {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}})


async def apply(ctx: dict, manifest: dict) -> dict:
    return await request(ctx["admin"], s.api("pods", "create"), {"object": manifest})


async def wait_pod(ctx: dict, name: str, predicate, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pod: dict = {}
    while loop.time() < deadline:
        pod = await request(ctx["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                  "name": name})
        if predicate(pod):
            return pod
        await asyncio.sleep(0.2)
    raise AssertionError(f"pod {name} never matched; last: {json.dumps(pod.get('status'))}")


def running(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return pod.get("status", {}).get("phase") == "Running" and bool(statuses) and all(
        c.get("ready") for c in statuses)


async def kubelet_exec(ctx: dict, name: str, container: str, command: list[str]) -> tuple[int, str]:
    result = await request(ctx["admin"], s.kubelet("node-a", "exec"), {
        "namespace": "default", "name": name, "container": container, "command": command})
    return result["exitCode"], base64.b64decode(result["stdout"]).decode()


def pod_manifest(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": containers, **spec}}


async def test_two_containers_share_localhost_env_and_an_empty_dir(cluster):
    name = f"web-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "server", "image": "localhost/peapod-busybox:latest",
         "command": ["sh", "-c", "echo hello > /www/index.html; httpd -f -p 8080 -h /www"],
         "volumeMounts": [{"name": "www", "mountPath": "/www"}]},
        {"name": "client", "image": "localhost/peapod-busybox:latest",
         "command": ["sleep", "3600"], "env": [{"name": "GREETING", "value": "hi there"}],
         "volumeMounts": [{"name": "www", "mountPath": "/shared"}]},
    ], volumes=[{"name": "www", "emptyDir": {}}]))
    pod = await wait_pod(cluster, name, running)
    assert pod["status"]["podIP"] and pod["status"]["hostIP"] == "127.0.0.1"
    code, out = await kubelet_exec(cluster, name, "client",
                                   ["wget", "-qO-", "http://127.0.0.1:8080/index.html"])
    assert (code, out) == (0, "hello\n")
    assert await kubelet_exec(cluster, name, "client", ["printenv", "GREETING"]) == (0, "hi there\n")
    assert await kubelet_exec(cluster, name, "client", ["cat", "/shared/index.html"]) == (0, "hello\n")


async def test_exited_container_is_restarted_with_restart_count_and_back_off(cluster):
    name = f"crash-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "localhost/peapod-busybox:latest",
         "command": ["sh", "-c", "echo started; sleep 1; exit 3"]}]))
    pod = await wait_pod(cluster, name, lambda p: any(
        (c.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        for c in p.get("status", {}).get("containerStatuses") or []))
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] >= 1
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    # at most the current and the previous attempt are kept in podman
    assert len(podman_ids(pod["metadata"]["uid"])) <= 3  # two attempts + the infra container
    js = cluster["admin"].jetstream()
    events = [json.loads(m.data) for m in await read_all(
        js, stream=s.EVENTS_STREAM, subject=s.event("default", "Pod", name))]
    backoff = [e for e in events if e["reason"] == "BackOff"]
    assert backoff and backoff[0]["type"] == "Warning", [e["reason"] for e in events]
    assert backoff[0]["message"] == "Back-off restarting failed container c in pod " \
        f"{name}_default({pod['metadata']['uid']})", backoff[0]


async def test_logs_are_served_and_a_missing_image_with_never_is_reported(cluster):
    name = f"logs-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "localhost/peapod-busybox:latest",
         "command": ["sh", "-c", "echo line one; echo line two; sleep 3600"]}]))
    await wait_pod(cluster, name, running)
    for _ in range(20):
        result = await request(cluster["admin"], s.kubelet("node-a", "logs"), {
            "namespace": "default", "name": name})
        text = base64.b64decode(result["data"]).decode()
        if "line two" in text:
            break
        await asyncio.sleep(0.2)
    assert text.splitlines() == ["line one", "line two"]

    missing = f"never-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(missing, [
        {"name": "c", "image": "localhost/no-such-image:1", "imagePullPolicy": "Never"}]))
    pod = await wait_pod(cluster, missing, lambda p: any(
        (c.get("state", {}).get("waiting") or {}).get("reason") == "ErrImageNeverPull"
        for c in p.get("status", {}).get("containerStatuses") or []))
    assert pod["status"]["phase"] == "Pending"


async def test_kubelet_restart_adopts_running_pods_without_duplicates(cluster):
    name = f"adopt-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "docker.io/library/mongo:3.3", "command": ["mongod"]}]))
    pod = await wait_pod(cluster, name, running)
    uid = pod["metadata"]["uid"]
    before = sorted(podman_ids(uid))
    await cluster["node"].halt()
    cluster["node"].start()
    await asyncio.sleep(3)
    pod = await wait_pod(cluster, name, running)
    assert sorted(podman_ids(uid)) == before
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_a_container_created_but_never_started_by_a_killed_kubelet_is_made_again(cluster):
    # Seen under chaos: the kubelet was killed after podman's create and before its start,
    # and the restarted kubelet waited for that container forever. Here the same podman
    # state is made by hand while the kubelet is down: the container is removed and created
    # again with podman's own create (same name, labels and pod), never started.
    name = f"created-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "localhost/peapod-busybox:latest", "command": ["sleep", "3600"]}],
        terminationGracePeriodSeconds=1))
    uid = (await wait_pod(cluster, name, running))["metadata"]["uid"]
    await cluster["node"].halt()
    [app] = [i for i in podman_ids(uid) if not podman_inspect(i)["IsInfra"]]
    info = podman_inspect(app)
    stale = await asyncio.to_thread(recreate_unstarted, info)
    assert podman_inspect(stale)["State"]["Status"] == "created"
    cluster["node"].start()
    def restarted(p: dict) -> bool:
        reported = p["status"]["containerStatuses"][0].get("containerID", "")
        return running(p) and reported.removeprefix("podman://") not in (info["Id"], stale)

    pod = await wait_pod(cluster, name, restarted)
    apps = [i for i in podman_ids(uid) if not podman_inspect(i)["IsInfra"]]
    assert len(apps) == 1 and not stale.startswith(apps[0]) and not info["Id"].startswith(apps[0])
    assert podman_inspect(apps[0])["State"]["Status"] == "running"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_delete_stops_containers_within_the_grace_period_and_leaves_nothing(cluster):
    name = f"del-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "stubborn", "image": "localhost/peapod-busybox:latest",
         "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}],
        terminationGracePeriodSeconds=2))
    pod = await wait_pod(cluster, name, running)
    uid = pod["metadata"]["uid"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await request(cluster["admin"], s.api("pods", "delete"), {"namespace": "default", "name": name})
    for _ in range(150):
        try:
            await request(cluster["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                    "name": name})
        except NotFound:
            break
        await asyncio.sleep(0.2)
    elapsed = loop.time() - started
    assert podman_ids(uid) == []
    assert elapsed < 20, f"deletion took {elapsed:.1f}s for a 2s grace period"


async def test_an_image_that_cannot_be_pulled_is_reported_not_run(cluster):
    # No registry is reachable here, so podman's pull fails for real; podman answers
    # 200 with the error in the body, which must not be taken for a successful pull.
    name = f"pull-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "localhost/no-such-image:1", "imagePullPolicy": "IfNotPresent"}]))
    pod = await wait_pod(cluster, name, lambda p: any(
        (c.get("state", {}).get("waiting") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
        for c in p.get("status", {}).get("containerStatuses") or []))
    assert pod["status"]["phase"] == "Pending"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert "localhost/no-such-image:1" in waiting["message"], waiting
    containers = podman_names(pod["metadata"]["uid"])
    assert all(c.endswith("-infra") for c in containers), containers


def test_kubelets_sharing_a_podman_host_see_only_their_own_pods(podman_socket, tmp_path):
    # Two clusters on one machine (a second `peapod up`, a test run beside a dev
    # cluster): each kubelet lists, adopts and removes only the pods it created.
    mine = PodmanRuntime(socket_path=podman_socket, state_dir=str(tmp_path / "a"))
    other = PodmanRuntime(socket_path=podman_socket, state_dir=str(tmp_path / "b"))
    again = PodmanRuntime(socket_path=podman_socket, state_dir=str(tmp_path / "a"))  # after a restart
    uid = str(uuid.uuid4())
    pod = Pod.model_validate({"metadata": {"name": "iso", "namespace": "default", "uid": uid},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}})
    mine.create_pod(pod)
    try:
        assert uid in {p.uid for p in mine.list_pods()}
        assert uid in {p.uid for p in again.list_pods()}
        assert uid not in {p.uid for p in other.list_pods()}
    finally:
        mine.remove_pod(uid)
    assert podman_ids(uid) == []


async def test_host_port_and_host_path_reach_the_host(cluster, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("from the host\n")
    port = free_port()
    name = f"hp-{uuid.uuid4().hex[:6]}"
    await allow_privileged(cluster)  # hostPort and hostPath: not in the baseline level
    await apply(cluster, pod_manifest(name, [
        {"name": "web", "image": "localhost/peapod-busybox:latest",
         "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
         "ports": [{"containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}],
         "volumeMounts": [{"name": "site", "mountPath": "/www", "readOnly": True}]},
    ], volumes=[{"name": "site", "hostPath": {"path": str(site), "type": "Directory"}}]))
    await wait_pod(cluster, name, running)

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as reply:
            return reply.read().decode()

    body = ""
    for _ in range(50):  # the port mapping is ready a moment after the container starts
        with contextlib.suppress(OSError):
            body = await asyncio.to_thread(fetch)
            break
        await asyncio.sleep(0.2)
    assert body == "from the host\n"
    # readOnly is honoured: the container cannot write to the host's directory
    code, _ = await kubelet_exec(cluster, name, "web", ["touch", "/www/written"])
    assert code != 0 and not (site / "written").exists()

    # a hostPath whose type does not match is refused, and nothing runs
    missing = f"hpbad-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(missing, [
        {"name": "c", "image": "localhost/peapod-busybox:latest", "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
    ], volumes=[{"name": "v", "hostPath": {"path": str(tmp_path / "absent"), "type": "Directory"}}]))
    pod = await wait_pod(cluster, missing, lambda p: any(
        (c.get("state", {}).get("waiting") or {}).get("reason") == "CreateContainerConfigError"
        for c in p.get("status", {}).get("containerStatuses") or []))
    assert "absent" in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)  # quick, and the loop has nothing else to do


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


async def test_mount_propagation_reaches_the_container_and_the_host(cluster, tmp_path):
    """mountPropagation, seen as Kubernetes defines it: a mount the host makes under a
    hostPath after the start appears in a HostToContainer mount (rslave) and not in a
    default one (rprivate); a privileged container's mount under a Bidirectional mount
    (rshared) appears on the host. The hostPath is made a shared mount, as a node's is."""
    source = tmp_path / "propagated"
    source.mkdir()
    _mount("--bind", str(source), str(source))
    _mount("--make-rshared", str(source))
    late = source / "late"
    late.mkdir()
    name = f"prop-{uuid.uuid4().hex[:6]}"
    try:
        await allow_privileged(cluster)
        await apply(cluster, pod_manifest(name, [
            {"name": "c", "image": "localhost/peapod-busybox:latest",
             "imagePullPolicy": "IfNotPresent",
             "command": ["sleep", "3600"], "securityContext": {"privileged": True},
             "volumeMounts": [
                 {"name": "v", "mountPath": "/slave", "mountPropagation": "HostToContainer"},
                 {"name": "v", "mountPath": "/private"},
                 {"name": "v", "mountPath": "/shared", "mountPropagation": "Bidirectional"},
                 {"name": "v", "mountPath": "/ro", "readOnly": True,
                  "recursiveReadOnly": "IfPossible"}]},
        ], volumes=[{"name": "v", "hostPath": {"path": str(source)}}]))
        await wait_pod(cluster, name, running)
        _mount("-t", "tmpfs", "tmpfs", str(late))
        code, mounts = await kubelet_exec(cluster, name, "c", ["cat", "/proc/mounts"])
        points = {line.split()[1] for line in mounts.splitlines()}
        assert code == 0 and "/slave/late" in points and "/private/late" not in points, mounts
        assert await kubelet_exec(cluster, name, "c", ["touch", "/ro/x"]) != (0, "")
        code, _ = await kubelet_exec(cluster, name, "c", [
            "sh", "-c", "mkdir -p /shared/inner && mount -t tmpfs tmpfs /shared/inner"])
        assert code == 0
        host = await asyncio.to_thread(Path("/proc/self/mounts").read_text)
        assert str(source / "inner") in {line.split()[1] for line in host.splitlines()}
    finally:
        for path in (source / "inner", late, source):
            _umount(path)
