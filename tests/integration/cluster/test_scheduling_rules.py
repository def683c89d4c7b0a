"""Taints, affinity, gates and schedulerName with a real apiserver, scheduler and nats-server.

Two nodes registered through their kubelets' own identities (no podman
needed: placement is the scheduler's business). Each wait ends as soon as
the expected binding or event shows; "not bound" is checked after a later
pod was bound, so no test sleeps for a fixed time to prove a negative.
"""

from __future__ import annotations

from typing import Any

from peapod.api import Pod
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.cli.printers import pod_status_reason
from tests.integration.cluster.test_scheduler import (
    events_for,
    pod,
    register,
    wait_for_node_name,
)


async def update_node(admin: Any, name: str, *, labels: dict | None = None,
                      taints: list | None = None) -> None:
    """What `peapod label node` / `taint` send: the node at its resourceVersion."""
    current = await request(admin, s.api("nodes", "get"), {"name": name})
    if labels is not None:
        current["metadata"]["labels"] = {**(current["metadata"].get("labels") or {}), **labels}
    if taints is not None:
        current["spec"]["taints"] = taints
    await request(admin, s.api("nodes", "update"), {"object": current})


async def create(admin: Any, name: str, **spec: Any) -> dict:
    doc = pod(name)
    labels = spec.pop("labels", None)
    if labels:
        doc["metadata"]["labels"] = labels
    doc["spec"].update(spec)
    return await request(admin, s.api("pods", "create"), {"object": doc})


async def failed_scheduling(admin: Any, name: str, tries: int = 50) -> str | None:
    for _ in range(tries):
        failed = [e for e in await events_for(admin, name) if e["reason"] == "FailedScheduling"]
        if failed:
            return str(failed[-1]["message"])
        await wait_for_node_name(admin, name, timeout=0.1)
    return None


async def scheduled_condition(admin: Any, name: str) -> tuple[str, str | None, str | None]:
    """The pod's PodScheduled condition, once the scheduler wrote it."""
    for _ in range(50):
        got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": name})
        cond = next((c for c in (got.get("status") or {}).get("conditions") or []
                     if c["type"] == "PodScheduled"), None)
        if cond is not None:
            return cond["status"], cond.get("reason"), cond.get("message")
        await wait_for_node_name(admin, name, timeout=0.1)
    raise AssertionError(f"{name}: no PodScheduled condition")


GPU_TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}


def in_zone(*zones: str) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": list(zones)}]}]}}}


async def test_taints_affinity_and_anti_affinity_place_pods_and_explain_refusals(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", labels={"zone": "z1"})
    await register(creds, "node-b", labels={"zone": "z2"})
    await update_node(admin, "node-a", taints=[{"key": "dedicated", "value": "gpu",
                                                "effect": "NoSchedule"}])
    await create(admin, "plain")
    assert await wait_for_node_name(admin, "plain") == "node-b"
    await create(admin, "trainer", tolerations=[GPU_TOLERATION], affinity=in_zone("z1"))
    assert await wait_for_node_name(admin, "trainer") == "node-a"

    await create(admin, "far", affinity=in_zone("z3"))
    assert await failed_scheduling(admin, "far") == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 nodes are available: "
        "2 Preemption is not helpful for scheduling.")
    assert await scheduled_condition(admin, "far") == (
        "False", "Unschedulable", "0/2 nodes are available: 1 node(s) didn't match Pod's node "
        "affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 "
        "nodes are available: 2 Preemption is not helpful for scheduling.")
    # a change, not a timer, brings the retry (the safety pass is 5 minutes away)
    await update_node(admin, "node-b", labels={"zone": "z3"})
    assert await wait_for_node_name(admin, "far", timeout=5) == "node-b"
    assert (await scheduled_condition(admin, "far"))[0] == "True"

    one_per_zone = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}
    for name in ("web-1", "web-2", "web-3"):
        await create(admin, name, labels={"app": "web"}, tolerations=[GPU_TOLERATION],
                     affinity=one_per_zone)
    placed = {await wait_for_node_name(admin, "web-1"), await wait_for_node_name(admin, "web-2")}
    assert placed == {"node-a", "node-b"}
    assert await failed_scheduling(admin, "web-3") == (
        "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")

    even = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "spread"}}}]
    prefer_z1 = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z1"]}]}}]}}
    spread_nodes = []
    for i in range(4):  # one at a time: each placement is what the next one's skew counts
        # the preference alone would put all four on node-a; the constraint splits them
        await create(admin, f"spread-{i}", labels={"app": "spread"}, tolerations=[GPU_TOLERATION],
                     topologySpreadConstraints=even, affinity=prefer_z1)
        spread_nodes.append(await wait_for_node_name(admin, f"spread-{i}"))
    assert sorted(spread_nodes) == ["node-a", "node-a", "node-b", "node-b"]


async def test_gated_and_foreign_scheduler_pods_wait_until_released(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a")
    gated = await create(admin, "gated", schedulingGates=[{"name": "example.com/quota"}])
    assert pod_status_reason(Pod.model_validate(gated))[0] == "SchedulingGated"
    await create(admin, "other", schedulerName="my-scheduler")
    await create(admin, "after")  # created later, bound first: the others were passed over
    assert await wait_for_node_name(admin, "after") == "node-a"
    assert await wait_for_node_name(admin, "gated", timeout=0.3) is None
    assert await wait_for_node_name(admin, "other", timeout=0.1) is None
    assert not await events_for(admin, "gated")  # a gated pod is not a scheduling failure

    released = pod("gated")
    released["spec"]["schedulingGates"] = []
    reply = await request(admin, s.api("pods", "apply"), {"object": released})
    assert reply["action"] == "configured"
    assert pod_status_reason(Pod.model_validate(reply["object"]))[0] == "Pending"
    assert await wait_for_node_name(admin, "gated") == "node-a"
    stored = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "other"})
    assert stored["spec"]["schedulerName"] == "my-scheduler" and not stored["spec"].get("nodeName")
