"""Mirror pods through the real apiserver and nats-server: only a node's own, nothing more.

Each kubelet (node-a, node-b) uses its own credentials, as ``peapod up``
writes them. node-a may create a mirror pod of its own static pod (bound to
it, owned by its Node) and delete it; every other attempt is refused with
Kubernetes' NodeRestriction words and stores nothing: a pod that is not a
mirror pod, a mirror pod bound to or owned by node-b, a wrong Node uid, a
mirror pod that references a Secret or a ConfigMap (it would let the node
read them), node-b's subjects (the NATS server refuses), node-b's mirror pod
deleted on node-a's subject, and a pod that is not a mirror pod deleted as one.
The scheduler leaves a mirror pod alone (it is bound already).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peapod.api import parse_object
from peapod.api.static import CONFIG_MIRROR, mirror_of, static_pod
from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Forbidden
from peapod.kubelet.node import build_node
from tests.integration.cluster.test_event_writers import event


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}], **spec}}


async def register(nc: Any, node: str) -> str:
    stored = await request(nc, s.node_api(node, "register"),
                           {"object": build_node(node, runtime_version="5").to_wire()})
    return str(stored["metadata"]["uid"])


async def stored_pods(admin: Any) -> list[str]:
    return sorted(p["metadata"]["name"] for p in await request(admin, s.api("pods", "list"), {}))


async def test_a_node_creates_and_deletes_its_own_mirror_pods_only(apiserver: dict) -> None:
    admin, creds = apiserver["admin"], apiserver["creds"]
    node_a = await connect(creds["kubelet-node-a"], name="kubelet-a")
    node_b = await connect(creds["kubelet-node-b"], name="kubelet-b")
    try:
        uid_a, uid_b = await register(node_a, "node-a"), await register(node_b, "node-b")
        web = static_pod(manifest("web"), node_name="node-a", source="/etc/peapod/manifests/w.yaml")
        good = mirror_of(web, node_uid=uid_a)

        def changed(change: Any) -> dict[str, Any]:
            doc = mirror_of(web, node_uid=uid_a)
            change(doc)
            return doc

        def secret_volume(doc: dict[str, Any]) -> None:
            doc["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "admin-token"}}]

        def config_env(doc: dict[str, Any]) -> None:
            doc["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "cfg"}}]

        refused = {
            "not a mirror pod": (changed(lambda d: d["metadata"]["annotations"].pop(CONFIG_MIRROR)),
                                 'does not have "kubernetes.io/config.mirror" annotation'),
            "bound to node-b": (changed(lambda d: d["spec"].update(nodeName="node-b")),
                                "can only create pods with spec.nodeName set to itself"),
            "owned by node-b": (changed(lambda d: d["metadata"]["ownerReferences"][0].update(
                name="node-b", uid=uid_b)), "owner reference set to itself"),
            "no owner": (changed(lambda d: d["metadata"].pop("ownerReferences")),
                         "an owner reference set to itself"),
            "not the controller": (changed(lambda d: d["metadata"]["ownerReferences"][0].update(
                controller=False)), "a controller owner reference"),
            "a wrong Node uid": (changed(lambda d: d["metadata"]["ownerReferences"][0].update(
                uid="0000")), "UID mismatch"),
            "a Secret": (changed(secret_volume), "can not create pods that reference secrets"),
            "a ConfigMap": (changed(config_env), "can not create pods that reference configmaps"),
        }
        for case, (doc, words) in refused.items():
            with pytest.raises(Forbidden, match=words):
                await request(node_a, s.node_api("node-a", "mirror.create"), {"object": doc})
            assert await stored_pods(admin) == [], case

        # node-b with its own credentials on node-a's subjects: the NATS server refuses
        for verb, payload in (("mirror.create", {"object": good}),
                              ("mirror.delete", {"namespace": "default", "name": "web-node-a"})):
            with pytest.raises(Forbidden, match="cannot publish on"):
                await request(node_b, s.node_api("node-a", verb), payload, timeout=3)
        assert await stored_pods(admin) == []

        created = await request(node_a, s.node_api("node-a", "mirror.create"), {"object": good})
        assert created["metadata"]["annotations"][CONFIG_MIRROR] == web.metadata.uid
        assert created["spec"]["nodeName"] == "node-a" and created["status"]["phase"] == "Pending"
        # the kubelet's events name the static pod (its uid): taken as about the mirror pod,
        # from node-a only
        started = event("Pod", "web-node-a", uid=web.metadata.uid)
        await request(node_a, s.node_api("node-a", "events"), {"object": started})
        with pytest.raises(Forbidden, match='bound to node "node-a"'):
            await request(node_b, s.node_api("node-b", "events"),
                          {"object": event("Pod", "web-node-a", uid=web.metadata.uid,
                                           host="node-b")})

        # node-b cannot delete node-a's mirror pod on its own subject
        with pytest.raises(Forbidden, match="not bound to that node"):
            await request(node_b, s.node_api("node-b", "mirror.delete"),
                          {"namespace": "default", "name": "web-node-a"})
        # nor may node-a delete a pod that is not a mirror pod, though bound to it
        await request(admin, s.api("pods", "create"),
                      {"object": manifest("plain", nodeName="node-a")})
        with pytest.raises(Forbidden, match="can only delete mirror pods"):
            await request(node_a, s.node_api("node-a", "mirror.delete"),
                          {"namespace": "default", "name": "plain"})
        assert await stored_pods(admin) == ["plain", "web-node-a"]

        await request(node_a, s.node_api("node-a", "mirror.delete"), {
            "namespace": "default", "name": "web-node-a", "uid": created["metadata"]["uid"]})
        assert await stored_pods(admin) == ["plain"]
    finally:
        await node_a.close()
        await node_b.close()


def test_a_mirror_pod_is_a_valid_pod_owned_by_its_node() -> None:
    web = static_pod(manifest("web"), node_name="node-a", source="/m/w.yaml")
    mirror = parse_object(mirror_of(web, node_uid="n-uid"))
    assert mirror.metadata.owner_references[0].kind == "Node"  # type: ignore[index]


async def test_the_mirror_pods_of_a_deleted_node_go_with_it(controllers: dict) -> None:
    """The garbage collector follows a mirror pod's owner reference to its Node; no kubelet
    is left to finish a graceful deletion, so the pod is removed at once."""
    admin = controllers["admin"]
    node_a = await connect(controllers["creds"]["kubelet-node-a"], name="kubelet-a")
    try:
        uid_a = await register(node_a, "node-a")
        web = static_pod(manifest("web"), node_name="node-a", source="/m/w.yaml")
        await request(node_a, s.node_api("node-a", "mirror.create"),
                      {"object": mirror_of(web, node_uid=uid_a)})
        await request(admin, s.api("pods", "create"),
                      {"object": manifest("plain", nodeName="node-a")})
        await request(admin, s.api("nodes", "delete"), {"name": "node-a"})
        for _ in range(100):
            if await stored_pods(admin) == ["plain"]:
                break
            await asyncio.sleep(0.1)
        assert await stored_pods(admin) == ["plain"]  # a pod nothing owns stays
    finally:
        await node_a.close()
