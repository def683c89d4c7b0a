"""A Deployment's rolling update on real podman with two kubelets, and a kill -9 in the middle.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py``: apiserver,
scheduler and two kubelets in-process, the controller manager as its own
process. While the rollout runs, the test samples the pods every 0.2 s:
with ``maxSurge: 1, maxUnavailable: 0`` there must never be fewer than
``replicas`` ready pods, nor more than ``replicas + 1`` pods that are not
terminating.
"""

from __future__ import annotations

import asyncio

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.test_deployments import get_deploy, update_deploy
from tests.integration.cluster.test_kubelet import running
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    fleet,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def sleeper(replicas: int, version: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "web", "image": IMAGE,
                                         "command": ["sleep", "3600"],
                                         "env": [{"name": "VERSION", "value": version}]}]}}}}


async def live_pods(admin) -> list[dict]:
    got = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    return [p for p in got if not p["metadata"].get("deletionTimestamp")]


def version_of(pod: dict) -> str:
    return pod["spec"]["containers"][0]["env"][0]["value"]


async def rolled_out(admin, replicas: int, version: str) -> bool:
    pods = await live_pods(admin)
    if len(pods) != replicas or not all(running(p) and version_of(p) == version for p in pods):
        return False
    all_pods = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    status = (await get_deploy(admin)).get("status") or {}
    return len(all_pods) == replicas and status.get("updatedReplicas") == replicas and \
        status.get("availableReplicas") == replicas


async def test_a_rolling_update_keeps_every_replica_ready_even_through_a_kill_9(fleet):  # noqa: F811
    admin, manager = fleet["admin"], fleet["manager"]
    await request(admin, s.api("deployments", "create"), {"object": sleeper(3, "1")})
    await eventually(lambda: rolled_out(admin, 3, "1"), "3 running on v1", timeout=120)
    samples: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            pods = await live_pods(admin)
            samples.append((sum(1 for p in pods if running(p)), len(pods)))
            await asyncio.sleep(0.2)
    sampler = asyncio.create_task(sample())
    await update_deploy(admin, lambda d: d["spec"]["template"]["spec"]["containers"][0][
        "env"][0].update(value="2"))

    async def one_new_pod_running() -> bool:
        return any(version_of(p) == "2" and running(p) for p in await live_pods(admin))
    await eventually(one_new_pod_running, "the first v2 pod running", timeout=120)
    manager.kill()
    await asyncio.sleep(1)
    manager.start()
    await eventually(lambda: rolled_out(admin, 3, "2"), "3 running on v2", timeout=180)
    stop.set()
    await sampler
    assert samples and min(ready for ready, _ in samples) >= 3, samples
    assert max(total for _, total in samples) <= 4, samples
    sets = await request(admin, s.api("replicasets", "list"), {"namespace": "default"})
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 3]
