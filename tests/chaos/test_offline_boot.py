"""A node rebooted while its control plane is unreachable runs its pods alone, then reconciles.

Kubelet ``chaos-b`` reaches nats-server through the test's ``LinkProxy``. Its
two pods run (``keep`` and ``gone``); then the link is cut and the node
"reboots": the kubelet is killed (supervision held, as on a machine that is
down) and its podman pods are stopped, as a power cut leaves them. The
kubelet starts again without any control plane: it runs both pods from its
last-known pods on disk (``kubelet/lastknown.py``), and its static pod
``agent`` from its manifest directory (as ``/etc/peapod/manifests``), whose
mirror pod ``agent-chaos-b`` is in the API again after the heal. Meanwhile the control
plane changes its mind: ``gone`` is force-deleted, ``fresh`` is created on
the node. After the heal the kubelet reconciles within 30 s: ``gone`` is
stopped and removed, ``fresh`` runs, ``keep`` still runs in its one podman
pod, and the node is Ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest

from peapod.api.static import CONFIG_MIRROR
from peapod.cli.client import Client
from peapod.errors import NotFound
from tests.chaos.conftest import ChaosCluster, manifests_dir, wait_nodes_ready
from tests.chaos.test_partition import NODE, container_status, eventually, look, node_ready, pod

pytestmark = [pytest.mark.podman, pytest.mark.timeout(600)]  # 300 s in pyproject

BOOT_WITHIN = 20.0  # issue 14: pods Running within 20 s once podman is up
HEAL_WITHIN = 30.0
KUBELET = f"kubelet-{NODE[-1]}"


async def _running_pod(client: Client, name: str) -> Any:
    try:
        found = await client.get_pod(name)
    except NotFound:
        return None
    return found if found.status and found.status.phase == "Running" else None


def saved_uids(cluster: ChaosCluster) -> set[str]:
    try:
        doc = json.loads((cluster.home / f"kubelet-{NODE}" / "pods.json").read_text())
    except (FileNotFoundError, ValueError):
        return set()
    return {p["metadata"]["uid"] for p in doc["pods"]}


async def test_a_node_rebooted_without_its_control_plane_runs_its_pods_then_reconciles(
        partition_cluster: ChaosCluster, partition_client: Client, capsys):
    cluster, client = partition_cluster, partition_client
    assert cluster.proxy is not None
    await wait_nodes_ready(client)
    uids = {name: (await client.create(pod(name, "sleep 3600", "Always")))["metadata"]["uid"]
            for name in ("keep", "gone")}
    static = pod("agent", "sleep 3600", "Always")
    del static["spec"]["nodeName"]  # a static pod runs where its file is
    (manifests_dir(cluster.home, NODE) / "agent.json").write_text(json.dumps(static))
    await eventually(lambda: _running_pod(client, f"agent-{NODE}"),
                     "the static pod's mirror Running", timeout=60)
    mirror = await client.get_pod(f"agent-{NODE}")
    uids["agent"] = mirror.metadata.annotations[CONFIG_MIRROR]  # the static pod's own uid

    async def running(names: Any) -> bool:
        pods = {p.metadata.name: p for p in await client.list_pods()}
        return all(name in pods and pods[name].status and pods[name].status.phase == "Running"
                   for name in names)
    await eventually(lambda: running(["keep", "gone"]), "keep and gone Running", timeout=60)
    await eventually(lambda: asyncio.sleep(0, {uids["keep"], uids["gone"]} <= saved_uids(cluster)),
                     "both saved on the node", timeout=10)

    # the link goes down and the node reboots: kubelet killed, its containers stopped
    cluster.proxy.cut()
    cluster.hold()
    kubelet = cluster.supervisor.procs[KUBELET]
    os.kill(kubelet.pid, signal.SIGKILL)
    await asyncio.to_thread(kubelet.wait, 10)
    await asyncio.to_thread(cluster.stop_podman_pods, NODE)
    assert not any((await asyncio.to_thread(look, cluster)).running.values())
    booted = time.monotonic()
    cluster.resume()

    async def running_in_podman(names: Any) -> bool:
        seen = await asyncio.to_thread(look, cluster)
        return all(seen.running[uids[name]] == 1 for name in names)
    offline_after = await eventually(lambda: running_in_podman(uids), "started offline",
                                     timeout=BOOT_WITHIN + 5)

    # while the node is away: gone is force-deleted, fresh created on the node
    await client.delete_pod("gone", grace=0)
    fresh = await client.create(pod("fresh", "sleep 3600", "Always"))
    uids["fresh"] = fresh["metadata"]["uid"]
    await asyncio.sleep(3)
    seen = await asyncio.to_thread(look, cluster)
    assert seen.running[uids["keep"]] == 1 and seen.running[uids["gone"]] == 1
    assert seen.running[uids["agent"]] == 1  # the static pod, with no control plane
    assert not seen.sandboxes[uids["fresh"]]  # nothing reaches a node that is cut off

    cluster.proxy.heal()

    async def reconciled() -> bool:
        seen = await asyncio.to_thread(look, cluster)
        try:
            await client.get_pod("gone")
            return False
        except NotFound:
            pass
        return (seen.sandboxes[uids["gone"]] == 0 and seen.running[uids["fresh"]] == 1
                and seen.sandboxes[uids["keep"]] == 1 and seen.running[uids["keep"]] == 1
                and seen.sandboxes[uids["agent"]] == 1
                and await _running_pod(client, f"agent-{NODE}") is not None
                and await running(["keep", "fresh"]) and await node_ready(client))
    reconciled_after = await eventually(reconciled, "reconciled", timeout=HEAL_WITHIN)
    keep = await client.get_pod("keep")
    figures = {"offline_running_after_s": round(offline_after, 1),
               "reconciled_after_heal_s": round(reconciled_after, 1),
               "keep_restarts": container_status(keep).restart_count}
    with capsys.disabled():
        print("\noffline boot figures:", json.dumps(figures))
    assert offline_after < BOOT_WITHIN, figures
    assert container_status(keep).restart_count >= 1, figures  # its container was started again
    assert time.monotonic() - booted < 120
