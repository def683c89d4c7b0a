"""A DaemonSet on real podman with two kubelets: one pod per node, a node that leaves and
joins again, a node selector, and a rolling update of the template.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py`` (apiserver,
scheduler and two kubelets in-process, the controller manager as its own
process).
"""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.test_kubelet import running
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    fleet,
)
from tests.integration.cluster.test_scheduler import events_for
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def agent(version: str = "1", selector: dict | None = None) -> dict:
    spec: dict = {"terminationGracePeriodSeconds": 1,
                  "containers": [{"name": "agent", "image": IMAGE, "command": ["sleep", "3600"],
                                  "env": [{"name": "VERSION", "value": version}]}]}
    if selector:
        spec["nodeSelector"] = selector
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}}


async def placed(admin, expected: dict[str, str]) -> bool:
    """Exactly one running pod per expected node, on the expected version, and nothing else."""
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default",
                                                        "labelSelector": "app=agent"})
    got = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["env"][0]["value"]
           for p in pods if running(p) and not p["metadata"].get("deletionTimestamp")}
    return len(pods) == len(expected) and got == expected


async def status_is(admin, **expected: int) -> bool:
    """The DaemonSet ``agent``'s status has these counts (the fields named as in its status)."""
    got = await request(admin, s.api("daemonsets", "get"), {"namespace": "default",
                                                            "name": "agent"})
    status = got.get("status") or {}
    return {field: status.get(field) for field in expected} == expected


async def test_one_daemon_per_node_through_leave_join_selector_and_update(fleet):  # noqa: F811
    admin, node_b = fleet["admin"], fleet["nodes"][1]
    ds = await request(admin, s.api("daemonsets", "create"), {"object": agent()})
    await eventually(lambda: placed(admin, {"node-a": "1", "node-b": "1"}), "one per node",
                     timeout=90)
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert all(p["metadata"]["name"].startswith("agent-") and
               p["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"] for p in pods)
    for p in pods:  # created pinned by node affinity, bound by the scheduler (Kubernetes ≥1.12)
        required = p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]
        assert required == {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [p["spec"]["nodeName"]]}]}]}
        scheduled = [e for e in await events_for(admin, p["metadata"]["name"])
                     if e["reason"] == "Scheduled"]
        assert [(e["source"]["component"], e["message"]) for e in scheduled] == [
            ("default-scheduler",
             f"Successfully assigned default/{p['metadata']['name']} to {p['spec']['nodeName']}")]

    # node-b leaves (kubelet stopped, Node deleted), then joins again: it gets a new daemon
    await node_b.halt()
    await request(admin, s.api("nodes", "delete"), {"name": "node-b"})

    async def b_pod_terminating() -> bool:
        got = await request(admin, s.api("pods", "list"), {"namespace": "default"})
        return any(p["spec"].get("nodeName") == "node-b" and p["metadata"].get("deletionTimestamp")
                   for p in got)
    await eventually(b_pod_terminating, "node-b's daemon deleted with its node")
    old_b = {p["metadata"]["uid"] for p in await request(admin, s.api("pods", "list"), {})
             if p["spec"].get("nodeName") == "node-b"}
    node_b.start()
    await eventually(lambda: placed(admin, {"node-a": "1", "node-b": "1"}), "node-b rejoined",
                     timeout=90)
    new_b = {p["metadata"]["uid"] for p in await request(admin, s.api("pods", "list"), {})
             if p["spec"].get("nodeName") == "node-b"}
    assert new_b and not (new_b & old_b)

    # a rolling update replaces both daemons; a node selector then keeps only node-a's
    current = await request(admin, s.api("daemonsets", "get"), {"namespace": "default",
                                                                "name": "agent"})
    current["spec"] = agent("2")["spec"]
    await request(admin, s.api("daemonsets", "update"), {"object": current})
    await eventually(lambda: placed(admin, {"node-a": "2", "node-b": "2"}), "both on v2",
                     timeout=120)
    node_a = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    node_a["metadata"]["labels"] = {**node_a["metadata"].get("labels", {}), "role": "edge"}
    await request(admin, s.api("nodes", "update"), {"object": node_a})
    current = await request(admin, s.api("daemonsets", "get"), {"namespace": "default",
                                                                "name": "agent"})
    current["spec"] = agent("2", selector={"role": "edge"})["spec"]
    await request(admin, s.api("daemonsets", "update"), {"object": current})
    await eventually(lambda: placed(admin, {"node-a": "2"}), "only the edge node", timeout=120)

    await eventually(lambda: status_is(admin, desiredNumberScheduled=1, numberReady=1),
                     "status: 1 desired, 1 ready")

    # a NoSchedule taint added later leaves the running daemon alone (Kubernetes'
    # shouldContinueRunning); it counts as misscheduled, and nothing new is made there
    kept = [p["metadata"]["uid"] for p in await request(admin, s.api("pods", "list"), {})]
    node_a = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    node_a["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    await request(admin, s.api("nodes", "update"), {"object": node_a})
    await eventually(lambda: status_is(admin, desiredNumberScheduled=0, numberMisscheduled=1),
                     "status: 0 desired, 1 misscheduled")
    still = await request(admin, s.api("pods", "list"), {})
    assert [p["metadata"]["uid"] for p in still] == kept, still
    assert not any(p["metadata"].get("deletionTimestamp") for p in still), still
    await request(admin, s.api("daemonsets", "delete"), {"namespace": "default", "name": "agent"})

    async def no_daemons() -> bool:
        return not await request(admin, s.api("pods", "list"), {"namespace": "default"})
    await eventually(no_daemons, "the collector removed the daemons", timeout=60)
