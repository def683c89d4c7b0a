"""A node that stops heartbeating: tainted unreachable, its pods evicted and replaced elsewhere,
the taint gone when it comes back, and no replica doubled.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py``, with the
controller manager restarted with ``--pod-eviction-timeout 2`` (Kubernetes'
300 s would make a slow test; the arithmetic with the default is unit
tested). node-b's kubelet is stopped and its lease removed, as a lease that
expired: waiting the real 40 s lease duration would only make the test
slower, not truer.
"""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from tests.integration.cluster.test_event_writers import stored_events
from tests.integration.cluster.test_kubelet import running
from tests.integration.cluster.test_replicasets import pods_of
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    ControllerManagerProcess,
    fleet,
    settled,
    sleeper_rs,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def taints(node: dict) -> list[dict]:
    return node.get("spec", {}).get("taints") or []


async def test_an_unreachable_node_is_tainted_its_pods_replaced_and_untainted_on_return(
        fleet, tmp_path):  # noqa: F811
    admin, node_b = fleet["admin"], fleet["nodes"][1]
    fleet["manager"].stop()
    manager = ControllerManagerProcess(fleet["manager"].creds_file, tmp_path / "cm2.log",
                                       args=("--pod-eviction-timeout", "2"))
    manager.start()
    fleet["manager"] = manager
    await request(admin, s.api("replicasets", "create"), {"object": sleeper_rs(2)})
    await eventually(lambda: settled(admin, 2), "2 running", timeout=90)
    assert sorted(p["spec"]["nodeName"] for p in await pods_of(admin)) == ["node-a", "node-b"]

    await node_b.halt()
    leases = await jetstream(admin).key_value(s.LEASE_BUCKET)
    await leases.delete("node-b")

    async def tainted() -> bool:
        node = await request(admin, s.api("nodes", "get"), {"name": "node-b"})
        return any(t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                   and t.get("timeAdded") for t in taints(node))
    await eventually(tainted, "node-b tainted unreachable")

    async def replaced_on_a() -> bool:
        pods = await pods_of(admin)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        going = [p for p in pods if p["metadata"].get("deletionTimestamp")]
        return (len(live) == 2 and all(p["spec"].get("nodeName") == "node-a" and running(p)
                                       for p in live)
                and [p["spec"].get("nodeName") for p in going] == ["node-b"])
    await eventually(replaced_on_a, "node-b's pod evicted and replaced on node-a", timeout=90)

    node_b.start()

    async def back() -> bool:
        node = await request(admin, s.api("nodes", "get"), {"name": "node-b"})
        pods = await pods_of(admin)
        return not taints(node) and len(pods) == 2 and all(
            p["spec"].get("nodeName") == "node-a" for p in pods)
    await eventually(back, "node-b untainted, its evicted pod finished, 2 pods", timeout=90)


async def test_a_noexecute_taint_evicts_the_pods_that_do_not_tolerate_it(fleet):  # noqa: F811
    # Kubernetes' taint manager for a taint people set: the ReplicaSet's pod on node-b goes at
    # once and is replaced on node-a; a pod tolerating the taint stays, the same container
    admin = fleet["admin"]
    await request(admin, s.api("replicasets", "create"), {"object": sleeper_rs(2)})
    await eventually(lambda: settled(admin, 2), "2 running", timeout=90)
    tolerant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tolerant"}, "spec": {
        "nodeName": "node-b", "terminationGracePeriodSeconds": 1,
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}],
        "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}
    uid = (await request(admin, s.api("pods", "create"), {"object": tolerant}))["metadata"]["uid"]
    await eventually(lambda: pods_running(admin, "tolerant"), "the tolerant pod running",
                     timeout=60)
    evicted = [p["metadata"]["name"] for p in await pods_of(admin)
               if p["spec"]["nodeName"] == "node-b"]

    node = await request(admin, s.api("nodes", "get"), {"name": "node-b"})
    node["spec"]["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]
    stored = await request(admin, s.api("nodes", "update"), {"object": node})
    assert stored["spec"]["taints"][0]["timeAdded"]  # stamped by the apiserver

    async def moved() -> bool:
        live = [p for p in await pods_of(admin) if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(p["spec"]["nodeName"] == "node-a" and running(p)
                                      for p in live)
    await eventually(moved, "node-b's replica evicted and replaced on node-a", timeout=90)
    pod = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "tolerant"})
    assert pod["metadata"]["uid"] == uid and running(pod)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    reasons = {(e.reason, e.involved_object.name) for e in await stored_events(admin)}
    assert ("TaintManagerEviction", evicted[0]) in reasons, reasons
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "tolerant"})


async def pods_running(admin, name: str) -> bool:
    pod = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": name})
    return running(pod)
