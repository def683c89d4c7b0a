"""Starting a pod quickly must not cut corners: the kubelet sends a started container's
events while it reads the pod back from podman, but reports the pod's status only after them.

Real kubelet, apiserver and scheduler over NATS, real podman (the shared ``cluster``
fixture). Running is seen the moment it is stored, through the pods' watch stream
(as ``peapod get -w`` sees it), not by polling, so a status sent ahead of its events would
be caught.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from nats.js.api import DeliverPolicy

from peapod.api import Pod
from peapod.api.decode import decode_model
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.events import latest_events, parse_event
from peapod.bus.replay import read_all
from tests.integration.cluster.test_kubelet import apply, pod_manifest

pytestmark = pytest.mark.podman


async def test_running_is_reported_after_the_events_and_with_the_pod_ip(cluster):
    js = cluster["admin"].jetstream()
    sub = await js.subscribe(s.watch_all("pods", "default"), stream=s.WATCH_STREAM,
                             ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
    name = f"quick-{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "main", "image": "localhost/peapod-busybox:latest",
         "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]))
    try:
        async with asyncio.timeout(60):
            async for msg in sub.messages:
                pod = decode_model(msg.data, Pod)
                if pod.metadata.name == name and pod.status and pod.status.phase == "Running":
                    break
    finally:
        await sub.unsubscribe()
    # read at once: what the status's sender waited for is stored by now
    events = latest_events(parse_event(m.data) for m in await read_all(
        js, stream=s.EVENTS_STREAM, subject=s.event("default", "Pod", name)))
    reasons = [e.reason for e in sorted(events, key=lambda e: e.first_timestamp or "")
               if e.source and e.source.component == "kubelet"]
    assert reasons == ["Pulled", "Created", "Started"]
    assert pod.status.pod_ip  # the sandbox's address, looked up while the container started
    assert pod.status.container_statuses and pod.status.container_statuses[0].state.running



def podman_server_version(socket: str) -> str:
    """What podman's own client says of the service on ``socket``."""
    return subprocess.run(["podman", "--url", f"unix://{socket}", "version", "--format",
                           "{{.Server.Version}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


async def test_the_node_names_the_version_of_the_podman_it_runs_on(cluster, podman_socket):
    node = await request(cluster["admin"], s.api("nodes", "get"), {"name": "node-a"})
    server = await asyncio.to_thread(podman_server_version, podman_socket)
    assert server and node["status"]["nodeInfo"]["containerRuntimeVersion"] == f"podman://{server}"
