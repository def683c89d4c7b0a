"""The ReplicaSet controller and the garbage collector against the real apiserver and nats-server.

The controller manager runs in-process with its own NATS user (the
production permissions); no kubelet runs here, so pods stay unbound and a
deleted pod leaves the store at once: these tests are about counts,
ownership and deletion order. Placement and running pods on podman are in
``test_replicasets_podman.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Conflict, Forbidden, Invalid, NotFound
from tests.waiting import eventually

NAME_SUFFIX = re.compile(r"^web-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def replicaset(name: str = "web", replicas: int = 3, *, labels: dict | None = None,
               selector: dict | None = None) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector or labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


def pod(name: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


async def pods_of(admin, selector: str = "app=web") -> list[dict]:
    return await request(admin, s.api("pods", "list"), {"namespace": "default",
                                                        "labelSelector": selector})


async def get_rs(admin, name: str = "web") -> dict:
    return await request(admin, s.api("replicasets", "get"), {"namespace": "default", "name": name})


async def update_rs(admin, change: Callable[[dict], Any], name: str = "web") -> dict:
    """Read, change, write at that resourceVersion; again on a conflict (the controller
    writes status meanwhile), as kubectl does."""
    for _ in range(10):
        current = await get_rs(admin, name)
        change(current)
        try:
            return await request(admin, s.api("replicasets", "update"), {"object": current})
        except Conflict:
            continue
    raise AssertionError("too many conflicts")


async def count_is(admin, n: int, selector: str = "app=web") -> Callable[[], Any]:
    async def check() -> bool:
        return len(await pods_of(admin, selector)) == n
    return check


async def test_a_replicaset_keeps_its_replicas_named_and_owned(controllers):
    admin = controllers["admin"]
    rs = await request(admin, s.api("replicasets", "create"), {"object": replicaset()})
    assert rs["metadata"]["generation"] == 1
    await eventually(await count_is(admin, 3), "3 pods")
    pods = await pods_of(admin)
    for p in pods:
        assert NAME_SUFFIX.match(p["metadata"]["name"]), p["metadata"]["name"]
        assert p["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]

    async def status_counts() -> Any:
        status = (await get_rs(admin)).get("status") or {}
        return status.get("replicas") == 3 and status.get("observedGeneration") == 1
    await eventually(status_counts, "status.replicas 3, observedGeneration 1")

    # a deleted pod is replaced by a new one
    victim = pods[0]["metadata"]["name"]
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": victim})

    async def replaced() -> bool:
        names = {p["metadata"]["name"] for p in await pods_of(admin)}
        return len(names) == 3 and victim not in names
    await eventually(replaced, "the deleted pod replaced")

    # scaled down through an update: the generation moves, two pods go
    updated = await update_rs(admin, lambda rs: rs["spec"].update(replicas=1))
    assert updated["metadata"]["generation"] == 2
    await eventually(await count_is(admin, 1), "1 pod left")
    await asyncio.sleep(0.5)  # no more creations after the count is reached
    assert len(await pods_of(admin)) == 1


async def test_orphans_matching_the_selector_are_adopted_and_mismatched_pods_released(controllers):
    admin = controllers["admin"]
    await request(admin, s.api("pods", "create"), {"object": pod("stray", {"app": "web"})})
    rs = await request(admin, s.api("replicasets", "create"), {"object": replicaset(replicas=2)})
    await eventually(await count_is(admin, 2), "2 pods")
    stray = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "stray"})
    assert stray["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]

    # relabelled away from the selector: released, and replaced
    stray["metadata"]["labels"] = {"app": "elsewhere"}
    await request(admin, s.api("pods", "update"), {"object": stray})

    async def released() -> bool:
        got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "stray"})
        return not got["metadata"].get("ownerReferences") and len(await pods_of(admin)) == 2
    await eventually(released, "stray released and replaced")


async def test_delete_cascades_in_the_background_by_default(controllers):
    admin = controllers["admin"]
    await request(admin, s.api("replicasets", "create"), {"object": replicaset(replicas=2)})
    await eventually(await count_is(admin, 2), "2 pods")
    result = await request(admin, s.api("replicasets", "delete"), {"namespace": "default",
                                                                   "name": "web"})
    assert result["finished"] is True
    await eventually(await count_is(admin, 0), "the dependents deleted by the collector")


async def test_orphan_keeps_the_pods_without_their_owner(controllers):
    admin = controllers["admin"]
    await request(admin, s.api("replicasets", "create"), {"object": replicaset(replicas=2)})
    await eventually(await count_is(admin, 2), "2 pods")
    result = await request(admin, s.api("replicasets", "delete"), {
        "namespace": "default", "name": "web", "propagationPolicy": "Orphan"})
    assert result["finished"] is False
    assert result["object"]["metadata"]["finalizers"] == ["orphan"]

    async def owner_gone() -> bool:
        try:
            await get_rs(admin)
        except NotFound:
            return True
        return False
    await eventually(owner_gone, "the ReplicaSet removed once its pods were orphaned")
    pods = await pods_of(admin)
    assert len(pods) == 2 and not any(p["metadata"].get("ownerReferences") for p in pods)


async def test_foreground_removes_the_owner_only_after_its_dependents(controllers):
    admin = controllers["admin"]
    await request(admin, s.api("replicasets", "create"), {"object": replicaset(replicas=2)})
    await eventually(await count_is(admin, 2), "2 pods")
    seen_owner_without_pods = []

    async def owner_gone() -> bool:
        pods = await pods_of(admin)
        try:
            rs = await get_rs(admin)
        except NotFound:
            return True
        assert rs["metadata"]["finalizers"] == ["foregroundDeletion"]
        seen_owner_without_pods.append(not pods)
        return False
    result = await request(admin, s.api("replicasets", "delete"), {
        "namespace": "default", "name": "web", "propagationPolicy": "Foreground"})
    assert result["finished"] is False and result["object"]["metadata"]["deletionTimestamp"]
    await eventually(owner_gone, "owner removed after its pods")
    assert await pods_of(admin) == []


async def test_replicaset_manifests_are_checked_with_kubernetes_words(controllers):
    admin = controllers["admin"]
    with pytest.raises(Invalid, match=r"spec.template.metadata.labels: Invalid value: "
                       r'map\[string\]string\{"app":"web"\}: `selector` does not match template '
                       r"`labels`"):
        await request(admin, s.api("replicasets", "create"),
                      {"object": replicaset(selector={"app": "other"})})
    bad = replicaset()
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    with pytest.raises(Invalid, match='restartPolicy: Unsupported value: "Never": supported '
                       'values: "Always"'):
        await request(admin, s.api("replicasets", "create"), {"object": bad})
    bad = replicaset()
    bad["metadata"]["finalizers"] = ["example.com/keep"]
    with pytest.raises(Invalid, match=r"metadata.finalizers\[0\]: Unsupported value"):
        await request(admin, s.api("replicasets", "create"), {"object": bad})
    with pytest.raises(Invalid, match="propagationPolicy"):
        await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "x",
                                                       "propagationPolicy": "Orphan"})
    assert await request(admin, s.api("replicasets", "list"), {"namespace": "default"}) == []


async def test_the_controller_manager_may_not_bind_pods_or_touch_nodes(controllers):
    nc = await connect(controllers["creds"]["controller-manager"], name="cm-probe")
    try:
        for subject in (s.api("pods", "bind"), s.api("nodes", "delete"),
                        s.api("namespaces", "delete")):
            # the NATS server refuses the publish (the apiserver never sees it), and says so
            with pytest.raises(Forbidden, match='User "controller-manager" cannot') as caught:
                await request(nc, subject, {"name": "x", "namespace": "default"}, timeout=1)
            assert "is forbidden: User" in caught.value.message, subject
    finally:
        await nc.close()
