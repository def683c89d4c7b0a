"""Static pods end to end: real kubelet (``kubelet.main.run``), real podman, real nats-server.

The kubelet starts with a manifest directory and a nats-server that does not
run yet: the static pod runs anyway. Then nats-server and the apiserver come
up: the mirror pod appears in the API (annotations, bound, owned by the Node,
Running). Deleting the mirror pod through the API does not stop the pod: the
kubelet makes a new mirror pod. A broken manifest is one log line and changes
nothing. Editing the manifest replaces the pod (new uid, the old podman pod
gone, a mirror pod of the new hash). A kubelet restart adopts the pod, no
duplicate. Removing the file stops the pod and deletes its mirror pod.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from peapod.api.static import CONFIG_HASH, CONFIG_MIRROR, CONFIG_SEEN, CONFIG_SOURCE
from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.auth import write_cluster_config
from peapod.bus.client import connect, request
from peapod.bus.supervise import RestartBackoff
from peapod.errors import NotFound, PeapodError
from peapod.kubelet import main as kubelet_main
from peapod.kubelet.manifests import ManifestDir
from tests.integration.cluster.test_offline_boot import (
    podman_pods_of,
    remove_pods_of,
    running_containers_of,
)
from tests.natsd import NATSD, free_port

pytestmark = [pytest.mark.podman, pytest.mark.timeout(240)]

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web%s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/peapod-busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo static hello; exec sleep 3600"]
"""


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if result := await check():
            return result
        assert loop.time() < deadline, what
        await asyncio.sleep(0.2)


def uid_of(manifests: Path) -> str:
    pods = ManifestDir(manifests, node_name="node-a").read() or {}
    return pods["default/web-node-a"].metadata.uid or ""


async def test_a_static_pod_runs_without_a_control_plane_and_is_mirrored(
        tmp_path: Path, podman_socket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubelet_main, "RestartBackoff",
                        lambda **_: RestartBackoff(initial=0.2, cap=0.5))
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path / "nats"), nodes=["node-a", "node-b"], port=port,
                                 http_port=http_port)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(MANIFEST % "")
    (manifests / ".web.yaml.swp").write_text(MANIFEST.replace("web", "hidden") % "")
    (manifests / "notes.txt").write_text(MANIFEST.replace("web", "text") % "")
    uid = uid_of(manifests)
    state = tmp_path / "kubelet"
    state.mkdir()
    uids = [uid]

    def start_kubelet() -> tuple[asyncio.Event, asyncio.Task[None]]:
        stop = asyncio.Event()
        return stop, asyncio.create_task(kubelet_main.run(
            creds["kubelet-node-a"], node_name="node-a", stop=stop, state_dir=str(state),
            podman_socket=podman_socket, host_ip="127.0.0.1", manifest_path=str(manifests),
            file_check_frequency=0.3))

    server = NATSD(tmp_path / "nats" / "nats.conf", http_port)
    api_stop, apiserver, admin = asyncio.Event(), None, None
    try:
        with capture_logs() as logs:
            stop, kubelet = start_kubelet()
            # no nats-server at all: the static pod runs
            await until(lambda: asyncio.to_thread(lambda: len(running_containers_of(uid)) == 1),
                        "the static pod runs with no control plane")
            container = running_containers_of(uid)
            assert not any("hidden" in str(e) or "text-node-a" in str(e) for e in logs
                           if e["event"] == "static_pod_added")

            server.start()
            apiserver = asyncio.create_task(run_apiserver(creds["apiserver"], stop=api_stop))
            admin = await connect(creds["admin"], name="test-admin")

            async def mirror(hash_: str) -> dict[str, Any] | None:
                try:
                    pod = await request(admin, s.api("pods", "get"),
                                        {"namespace": "default", "name": "web-node-a"})
                except PeapodError:
                    return None
                meta = pod["metadata"]
                fine = meta["annotations"].get(CONFIG_MIRROR) == hash_ \
                    and not meta.get("deletionTimestamp") \
                    and (pod.get("status") or {}).get("phase") == "Running"
                return pod if fine else None

            first = await until(lambda: mirror(uid), "a Running mirror pod in the API")
            node = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
            meta = first["metadata"]
            assert meta["uid"] != uid and meta["annotations"][CONFIG_HASH] == uid
            assert meta["annotations"][CONFIG_SOURCE] == "file" and CONFIG_SEEN in meta["annotations"]
            assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node",
                                                "name": "node-a", "controller": True,
                                                "uid": node["metadata"]["uid"]}]
            assert first["spec"]["nodeName"] == "node-a"
            logs_reply = await request(admin, s.kubelet("node-a", "logs"), {
                "namespace": "default", "name": "web-node-a", "follow": False})
            assert base64.b64decode(logs_reply["data"]) == b"static hello\n"  # logs, by name
            listed = await request(admin, s.api("pods", "list"), {"namespace": "default"})
            assert [p["metadata"]["name"] for p in listed] == ["web-node-a"]  # hidden, .txt: no

            # deleting the mirror pod through the API: a new mirror pod, the same container
            await request(admin, s.api("pods", "delete"),
                          {"namespace": "default", "name": "web-node-a"})
            second = await until(lambda: _other(mirror(uid), meta["uid"]), "a new mirror pod",
                                 timeout=30)
            assert second["metadata"]["uid"] != meta["uid"]
            assert running_containers_of(uid) == container

            # a broken manifest: one log line, nothing else changes
            (manifests / "broken.yaml").write_text(MANIFEST.replace("image: ", "imagex: ") % "")
            await until(lambda: asyncio.sleep(0, [e for e in logs if e["event"] ==
                                                  "static_pod_manifest_invalid"]),
                        "the broken manifest is logged", timeout=10)
            await asyncio.sleep(1)  # three more checks
            invalid = [e for e in logs if e["event"] == "static_pod_manifest_invalid"]
            assert len(invalid) == 1 and invalid[0]["file"].endswith("broken.yaml")
            assert "imagex" in invalid[0]["error"]
            assert running_containers_of(uid) == container

            # editing the manifest replaces the pod: new uid, the old one stopped first
            (manifests / "web.yaml").write_text(MANIFEST % ", tier: front")
            new_uid = uid_of(manifests)
            uids.append(new_uid)
            assert new_uid != uid
            await until(lambda: mirror(new_uid), "the mirror pod of the edited manifest")
            assert await asyncio.to_thread(podman_pods_of, uid) == []
            container = running_containers_of(new_uid)
            assert len(container) == 1

        # a kubelet restart adopts the pod: no duplicate, the same container, the same mirror
        third = await mirror(new_uid)
        assert third is not None
        stop.set()
        await asyncio.wait_for(kubelet, 30)
        stop, kubelet = start_kubelet()
        await asyncio.sleep(3)
        assert running_containers_of(new_uid) == container
        assert len(await asyncio.to_thread(podman_pods_of, new_uid)) == 1
        again = await until(lambda: mirror(new_uid), "the mirror pod after the restart")
        assert again["metadata"]["uid"] == third["metadata"]["uid"]

        # removing the file stops the pod and deletes its mirror pod
        (manifests / "web.yaml").unlink()

        async def gone() -> bool:
            try:
                await request(admin, s.api("pods", "get"),
                              {"namespace": "default", "name": "web-node-a"})
            except NotFound:
                return not await asyncio.to_thread(podman_pods_of, new_uid)
            return False
        await until(gone, "the pod stopped and its mirror pod deleted", timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(kubelet, 30)
        for each in uids:
            await asyncio.to_thread(remove_pods_of, each)
        if admin is not None:
            await admin.close()
        api_stop.set()
        if apiserver is not None:
            await asyncio.wait_for(apiserver, 10)
        server.stop()


async def _other(pending: Awaitable[dict[str, Any] | None], old_uid: str) -> dict[str, Any] | None:
    pod = await pending
    return pod if pod is not None and pod["metadata"]["uid"] != old_uid else None
