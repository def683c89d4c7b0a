"""Deployments against the real apiserver and nats-server: ReplicaSets by template hash, rollouts.

No kubelet runs here, so no pod ever becomes ready; the test marks pods
ready itself through the node status verb of a registered node (what a
kubelet reports), so that the rolling update's availability arithmetic is
exercised on real objects. Running pods on podman is in
``test_deployments_podman.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Conflict, Invalid
from tests.integration.cluster.cli import cli_for
from tests.waiting import eventually

HASHED = re.compile(r"^web-[bcdfghjklmnpqrstvwxz2456789]{1,10}$")


def deployment(replicas: int = 3, image: str = "busybox:1", **spec: Any) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}},
                     **spec}}


async def replicasets(admin) -> list[dict]:
    return await request(admin, s.api("replicasets", "list"), {"namespace": "default"})


async def pods(admin) -> list[dict]:
    return await request(admin, s.api("pods", "list"), {"namespace": "default"})


async def get_deploy(admin) -> dict:
    return await request(admin, s.api("deployments", "get"), {"namespace": "default", "name": "web"})


async def update_deploy(admin, change) -> dict:
    for _ in range(10):
        current = await get_deploy(admin)
        change(current)
        try:
            return await request(admin, s.api("deployments", "update"), {"object": current})
        except Conflict:
            continue
    raise AssertionError("too many conflicts")


async def test_a_deployment_makes_a_hashed_replicaset_whose_pods_carry_the_hash(controllers):
    admin = controllers["admin"]
    await request(admin, s.api("deployments", "create"), {"object": deployment()})

    async def three_pods() -> list[dict] | None:
        got = await pods(admin)
        return got if len(got) == 3 else None
    got = await eventually(three_pods, "3 pods")
    [rs] = await replicasets(admin)
    name = rs["metadata"]["name"]
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert HASHED.match(name) and name == f"web-{hash_}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    for pod in got:
        assert re.fullmatch(rf"{name}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", pod["metadata"]["name"])
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": hash_}

    async def status() -> bool:
        st = (await get_deploy(admin)).get("status") or {}
        return st.get("replicas") == 3 and st.get("updatedReplicas") == 3
    await eventually(status, "status counts 3 updated")


async def test_recreate_replaces_every_pod_and_history_is_kept_to_the_limit(controllers, tmp_path):
    admin = controllers["admin"]
    await request(admin, s.api("deployments", "create"), {"object": deployment(
        2, strategy={"type": "Recreate"}, revisionHistoryLimit=1)})
    for image in ("busybox:2", "busybox:3"):
        await eventually(lambda: _all_on(admin, 2), "2 pods of one template")
        await update_deploy(admin, lambda d, i=image: d["spec"]["template"]["spec"][
            "containers"][0].update(image=i))
    await eventually(lambda: _all_on(admin, 2, image="busybox:3"), "2 pods on busybox:3")

    async def history_trimmed() -> bool:
        sets = await replicasets(admin)
        return len(sets) == 2  # the current one, and one old (revisionHistoryLimit 1)
    await eventually(history_trimmed, "old ReplicaSets beyond the limit deleted")
    cli = cli_for(controllers, tmp_path)
    history = await cli("rollout", "history", "deployment/web")
    assert history.out.splitlines()[:3] == ["deployment.apps/web ", "REVISION   CHANGE-CAUSE",
                                            "2          <none>"], history.out
    undo = await cli("rollout", "undo", "deployment/web")
    assert undo.out == "deployment.apps/web rolled back\n", undo.err
    await eventually(lambda: _all_on(admin, 2, image="busybox:2"), "back on busybox:2")

    async def revision_moved() -> bool:
        sets = {rs["spec"]["template"]["spec"]["containers"][0]["image"]:
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                for rs in await replicasets(admin)}
        return sets.get("busybox:2") == "4"
    await eventually(revision_moved, "the rolled-back ReplicaSet is revision 4")


async def _all_on(admin, count: int, *, image: str | None = None) -> bool:
    got = await pods(admin)
    images = {p["spec"]["containers"][0]["image"] for p in got}
    return len(got) == count and len(images) == 1 and (image is None or images == {image})


async def test_deployment_manifests_are_checked(controllers):
    admin = controllers["admin"]
    with pytest.raises(Invalid, match="may not be specified when strategy `type` is 'Recreate'"):
        await request(admin, s.api("deployments", "create"), {"object": deployment(
            strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})})
    with pytest.raises(Invalid, match="maxUnavailable: Invalid value: 0: may not be 0 when "
                       "`maxSurge` is 0"):
        await request(admin, s.api("deployments", "create"), {"object": deployment(
            strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})})
    with pytest.raises(Invalid, match="must be a non-negative integer or a percentage"):
        await request(admin, s.api("deployments", "create"), {"object": deployment(
            strategy={"rollingUpdate": {"maxSurge": "lots"}})})
    assert await request(admin, s.api("deployments", "list"), {"namespace": "default"}) == []
