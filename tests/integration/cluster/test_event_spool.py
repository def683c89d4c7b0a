"""Events a kubelet held while cut off survive its restart, and are stored once.

Real podman and a real nats-server with the apiserver. A kubelet starts
without a connection and runs its last-known pod: the Pulled, Created and
Started events wait on the node, in its state directory. That kubelet stops (its
pod keeps running); a new recorder on the same state directory, the
restarted kubelet's, sends them once connected. A copy of the file as it was
before the send stands for a kubelet that crashed between the send and the
line saying so: sent again, each event is still stored once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import pytest
from nats.aio.client import Client as NATS

from peapod.api import Event, Pod
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.bus.events import EventRecorder
from peapod.bus.replay import read_all
from peapod.bus.spool import FILE_NAME
from peapod.kubelet.lastknown import LastKnown
from tests.integration.cluster.test_offline_boot import (
    offline_kubelet,
    relisting,
    remove_pods_of,
    running_containers_of,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


async def stored_events(admin: NATS, pod: str) -> list[Event]:
    msgs = await read_all(jetstream(admin), stream=s.EVENTS_STREAM,
                          subject=s.event("default", "Pod", pod))
    return [Event.model_validate(json.loads(m.data)) for m in msgs]


async def test_events_held_while_cut_off_are_sent_once_after_a_kubelet_restart(
        apiserver, podman_socket, tmp_path):
    name = f"spooled-{uuid.uuid4().hex[:6]}"
    created = await request(apiserver["admin"], s.api("pods", "create"), {"object": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": "localhost/peapod-busybox:latest",
             "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}})
    pod = Pod.model_validate(created)
    uid = pod.metadata.uid or ""
    state = tmp_path / "kubelet"
    state.mkdir()
    LastKnown(state).save([(pod, "Running")])
    kubelet = offline_kubelet(podman_socket, state)
    async with relisting(kubelet):  # then the kubelet stops; its pod runs on
        kubelet.start_offline(kubelet.last_known.load())  # type: ignore[union-attr]
        await eventually(lambda: len(running_containers_of(uid)) == 1, "started offline",
                         timeout=60)
        await eventually(lambda: kubelet.events.held >= 3, "Pulled, Created and Started held",
                         timeout=60)
    held = kubelet.events.held
    nc = None
    try:
        spooled = state / FILE_NAME
        shutil.copy(spooled, tmp_path / "before-send")
        nc = await connect(apiserver["creds"]["kubelet-node-a"], name="kubelet")
        restarted = EventRecorder.for_node(nc, "node-a", state)
        assert restarted.held == held
        assert await restarted.flush() == held
        assert not spooled.exists()  # nothing waits: the file is gone
        assert EventRecorder.for_node(nc, "node-a", state).held == 0
        stored = await stored_events(apiserver["admin"], name)
        assert sorted(e.reason for e in stored) == ["Created", "Pulled", "Started"]
        assert {e.involved_object.uid for e in stored} == {uid}

        shutil.copy(tmp_path / "before-send", spooled)  # crashed before writing "sent"
        again = EventRecorder.for_node(nc, "node-a", state)
        assert await again.flush() == held  # the apiserver answered, and stored nothing new
        assert [e.metadata.name for e in await stored_events(apiserver["admin"], name)] == \
            [e.metadata.name for e in stored]
    finally:
        await asyncio.to_thread(remove_pods_of, uid)
        if nc is not None:
            await nc.close()
