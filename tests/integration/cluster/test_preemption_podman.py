"""Priority and preemption end to end: the real apiserver (priority admission), scheduler
(queue order, DefaultPreemption) and kubelet over NATS, pods on real podman.

The node is made "full" deterministically with one extended resource
(``example.com/dongle=1``, advertised as ``--extended-resources`` does): a pod
holding the dongle leaves no room for another that asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound
from tests.integration.cluster.test_extended_resources import DONGLE, advertise_dongles, dongles
from tests.integration.cluster.test_kubelet import (
    apply,
    running,
    wait_pod,
)
from tests.integration.cluster.test_scheduler import events_for

pytestmark = pytest.mark.podman


async def _priority_class(admin, name: str, value: int, policy: str) -> None:
    await request(admin, s.api("priorityclasses", "create"), {"object": {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name}, "value": value, "preemptionPolicy": policy}})


def _classed(name: str, pc: str, *, grace: int = 0) -> dict:
    manifest = dongles(name, 1)
    manifest["spec"].update(priorityClassName=pc, terminationGracePeriodSeconds=grace)
    return manifest


async def _event(admin, name: str, reason: str, timeout: float = 30) -> dict:
    for _ in range(int(timeout * 10)):
        found = [e for e in await events_for(admin, name) if e["reason"] == reason]
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {reason} event for {name}")


async def test_a_higher_priority_pod_preempts_and_a_never_pod_does_not(cluster):
    admin = cluster["admin"]
    tag = uuid.uuid4().hex[:6]
    low_pc, high_pc, never_pc = f"low-{tag}", f"high-{tag}", f"never-{tag}"
    low, never, high = f"low-{tag}", f"never-{tag}", f"high-{tag}"
    try:
        status = await advertise_dongles(cluster, "1")
        assert status["allocatable"][DONGLE] == "1"
        await _priority_class(admin, low_pc, 10, "PreemptLowerPriority")
        await _priority_class(admin, high_pc, 1000, "PreemptLowerPriority")
        await _priority_class(admin, never_pc, 1000, "Never")
        await apply(cluster, _classed(low, low_pc, grace=2))
        await wait_pod(cluster, low, running, timeout=90)

        # a Never pod of higher priority waits, and says why it does not preempt
        await apply(cluster, _classed(never, never_pc))
        failed = await _event(admin, never, "FailedScheduling")
        assert failed["message"] == ("0/1 nodes are available: 1 Insufficient example.com/dongle. "
                                     "preemption: not eligible due to preemptionPolicy=Never.")
        victim = await wait_pod(cluster, low, lambda p: True)
        assert "deletionTimestamp" not in victim["metadata"] and running(victim)

        # a preempting pod of the same priority evicts the low one, gracefully, and runs
        created = await apply(cluster, _classed(high, high_pc))
        preempted = await _event(admin, low, "Preempted")
        assert preempted["message"] == (f"Preempted by pod {created['metadata']['uid']} on node "
                                        "node-a")
        nominated = await wait_pod(cluster, high, lambda p: (p.get("status") or {}).get(
            "nominatedNodeName") or p["spec"].get("nodeName"))
        assert nominated["spec"].get("nodeName") or \
            nominated["status"]["nominatedNodeName"] == "node-a"
        await wait_pod(cluster, high, running, timeout=90)
        with pytest.raises(NotFound):
            await request(admin, s.api("pods", "get"), {"namespace": "default", "name": low})
        # the Never pod still waits: the dongle went to the pod that made room for itself
        waiting = await wait_pod(cluster, never, lambda p: True)
        assert not waiting["spec"].get("nodeName")
    finally:
        for name in (low_pc, high_pc, never_pc):
            with contextlib.suppress(NotFound):
                await request(admin, s.api("priorityclasses", "delete"), {"name": name})
