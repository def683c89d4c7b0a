"""Namespaces against the real apiserver on a real nats-server: Kubernetes' lifecycle and words."""

from __future__ import annotations

import asyncio
import json

import pytest

from peapod.api import Namespace
from peapod.apiserver.handlers import Api
from peapod.apiserver.namespaces import Namespaces
from peapod.apiserver.store import OP_HEADER, Store
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.errors import Conflict, Forbidden, Invalid, NotFound


def pod(name: str = "web", namespace: str | None = None, **spec) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}], **spec}}


def ns(name: str, **metadata) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **metadata}}


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


async def pods_in(admin, namespace: str | None = None) -> list[str]:
    listed = await request(admin, s.api("pods", "list"), {"namespace": namespace})
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in listed)


async def gone(admin, name: str, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            await request(admin, s.api("namespaces", "get"), {"name": name})
        except NotFound:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"namespace {name} still there")


async def test_default_exists_with_kubernetes_shape(apiserver):
    admin = apiserver["admin"]
    default = await request(admin, s.api("namespaces", "get"), {"name": "default"})
    assert default["spec"] == {"finalizers": ["kubernetes"]}
    assert default["status"] == {"phase": "Active"}
    assert default["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}
    assert default["metadata"]["uid"] and default["metadata"]["resourceVersion"]
    listed = await request(admin, s.api("namespaces", "list"), {})
    assert [n["metadata"]["name"] for n in listed] == ["default"]


async def test_a_pod_goes_into_its_manifests_namespace_once_that_exists(apiserver):
    admin = apiserver["admin"]
    with pytest.raises(NotFound, match=r'^namespaces "qos-example" not found$'):
        await request(admin, s.api("pods", "create"), {"object": pod(namespace="qos-example")})
    with pytest.raises(NotFound, match=r'^namespaces "qos-example" not found$'):
        await request(admin, s.api("pods", "apply"), {"object": pod(namespace="qos-example")})
    assert await pods_in(admin) == []
    created = await request(admin, s.api("namespaces", "create"),
                            {"object": ns("qos-example", namespace="ignored")})
    assert created["metadata"].get("namespace") is None  # cluster-scoped, as BeforeCreate clears it
    applied = await request(admin, s.api("pods", "apply"), {"object": pod(namespace="qos-example"),
                                                             "namespace": "qos-example"})
    assert applied["action"] == "created"
    await request(admin, s.api("pods", "create"), {"object": pod()})
    assert await pods_in(admin) == ["default/web", "qos-example/web"]
    assert await pods_in(admin, "qos-example") == ["qos-example/web"]
    # the server's own rule for another client: a request namespace the object contradicts
    with pytest.raises(Invalid, match=r"does not match the namespace sent on the request"):
        await request(admin, s.api("pods", "create"), {"object": pod("x", namespace="qos-example"),
                                                        "namespace": "default"})


async def test_namespace_create_apply_and_their_refusals(apiserver):
    admin = apiserver["admin"]
    first = await request(admin, s.api("namespaces", "apply"), {"object": ns("dev")})
    assert first["action"] == "created"
    again = await request(admin, s.api("namespaces", "apply"), {"object": ns("dev")})
    assert again["action"] == "unchanged"
    labelled = await request(admin, s.api("namespaces", "apply"),
                             {"object": ns("dev", labels={"team": "a"})})
    assert labelled["action"] == "configured"
    assert labelled["object"]["metadata"]["labels"] == {"kubernetes.io/metadata.name": "dev",
                                                        "team": "a"}
    selected = await request(admin, s.api("namespaces", "list"), {"labelSelector": "team=a"})
    assert [n["metadata"]["name"] for n in selected] == ["dev"]
    with pytest.raises(Exception, match=r'namespaces "dev" already exists'):
        await request(admin, s.api("namespaces", "create"), {"object": ns("dev")})
    with pytest.raises(Invalid, match=r"metadata.name: invalid name 'a.b'"):
        await request(admin, s.api("namespaces", "create"), {"object": ns("a.b")})
    generated = await request(admin, s.api("namespaces", "create"),
                              {"object": {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"generateName": "tmp-"}}})
    assert generated["metadata"]["name"].startswith("tmp-")


async def test_default_may_not_be_deleted(apiserver):
    with pytest.raises(Forbidden, match=r'^namespaces "default" is forbidden: this namespace may '
                                        r"not be deleted$"):
        await request(apiserver["admin"], s.api("namespaces", "delete"), {"name": "default"})
    with pytest.raises(NotFound, match=r'^namespaces "nope" not found$'):
        await request(apiserver["admin"], s.api("namespaces", "delete"), {"name": "nope"})


async def test_deleting_a_namespace_of_unbound_pods_removes_them_and_it_at_once(apiserver):
    admin = apiserver["admin"]
    await request(admin, s.api("namespaces", "create"), {"object": ns("scratch")})
    for name in ("a", "b.c"):
        await request(admin, s.api("pods", "create"), {"object": pod(name, "scratch")})
    await request(admin, s.api("pods", "create"), {"object": pod("keep")})
    result = await request(admin, s.api("namespaces", "delete"), {"name": "scratch"})
    assert result["finished"] is True
    assert result["object"]["status"]["phase"] == "Terminating"
    assert result["object"]["metadata"]["deletionTimestamp"]
    await gone(admin, "scratch")
    assert await pods_in(admin) == ["default/keep"]


async def test_a_terminating_namespace_refuses_new_content_until_its_pods_are_gone(apiserver):
    admin, creds = apiserver["admin"], apiserver["creds"]
    kubelet = await connect(creds["kubelet-node-a"], name="kubelet-a")
    try:
        await request(kubelet, s.node_api("node-a", "register"), {"object": node("node-a")})
        await request(admin, s.api("namespaces", "create"), {"object": ns("doomed")})
        bound = await request(admin, s.api("pods", "create"),
                              {"object": pod("bound", "doomed", nodeName="node-a")})
        result = await request(admin, s.api("namespaces", "delete"), {"name": "doomed"})
        assert result["finished"] is False
        shown = await request(admin, s.api("namespaces", "get"), {"name": "doomed"})
        assert shown["status"]["phase"] == "Terminating"
        terminating = await request(admin, s.api("pods", "get"), {"namespace": "doomed",
                                                                   "name": "bound"})
        assert terminating["metadata"]["deletionTimestamp"]
        assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
        with pytest.raises(Forbidden, match=r'^pods "late" is forbidden: unable to create new '
                                            r"content in namespace doomed because it is being "
                                            r"terminated$"):
            await request(admin, s.api("pods", "create"), {"object": pod("late", "doomed")})
        with pytest.raises(Conflict, match=r'^Operation cannot be fulfilled on namespaces "doomed": '
                                           r"The system is ensuring all content is removed from "
                                           r"this namespace.  Upon completion, this namespace will "
                                           r"automatically be purged by the system.$"):
            await request(admin, s.api("namespaces", "delete"), {"name": "doomed"})
        # the kubelet stops the pod and finalizes it: the namespace goes with its last pod
        await request(kubelet, s.node_api("node-a", "finalize"), {
            "namespace": "doomed", "name": "bound", "uid": bound["metadata"]["uid"]})
        await gone(admin, "doomed")
        assert await pods_in(admin) == []
    finally:
        await kubelet.close()


async def _create_racing_a_deletion(admin, deletion) -> Exception:
    """Create a pod through the apiserver's own create path (driven directly, so the race is
    placed exactly): the namespace is Active at admission, ``deletion`` runs after the write."""
    await request(admin, s.api("namespaces", "create"), {"object": ns("racy")})
    api = Api(Store(jetstream(admin)))
    admit = api.namespaces.admit_into
    calls = 0

    async def admit_around_a_deletion(namespace: str, what: str) -> Namespace:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the pod's write, before the check that follows it
            await deletion(api, namespace)
        return await admit(namespace, what)

    api.namespaces.admit_into = admit_around_a_deletion  # type: ignore[method-assign]
    with pytest.raises((Forbidden, NotFound)) as refused:
        await api.create_pod({"object": pod("late", "racy")}, None)  # type: ignore[arg-type]
    return refused.value


async def test_a_pod_the_namespace_sweep_saw_is_removed_by_the_sweep(apiserver):
    admin = apiserver["admin"]

    async def delete(api, namespace):
        await request(admin, s.api("namespaces", "delete"), {"name": namespace})

    refused = await _create_racing_a_deletion(admin, delete)
    assert isinstance(refused, NotFound) and refused.message == 'namespaces "racy" not found'
    assert await pods_in(admin, "racy") == []
    await gone(admin, "racy")


async def test_a_pod_written_after_the_sweep_looked_is_removed_by_its_creator(apiserver):
    admin = apiserver["admin"]

    async def mark_terminating(api, namespace):  # the deletion's first step, its sweep not yet
        key, what = s.kv_key("namespaces", None, namespace), f'namespaces "{namespace}"'
        current = await api.store.get(key, what=what)
        marked = {**current.value, "status": {"phase": "Terminating"}}
        await api.store.update(key, marked, expected=current.revision, what=what)

    refused = await _create_racing_a_deletion(admin, mark_terminating)
    assert isinstance(refused, Forbidden)
    assert refused.message == ('pods "late" is forbidden: unable to create new content in '
                               "namespace racy because it is being terminated")
    assert await pods_in(admin, "racy") == []


async def test_namespaces_that_hold_pods_from_before_namespaces_existed_are_created(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    old = pod("old", "legacy")
    old["metadata"].update(uid="u-1", creationTimestamp="2026-01-01T00:00:00Z")
    await js.publish(f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'legacy', 'old')}",
                     json.dumps(old).encode(), headers={OP_HEADER: "ADDED"})
    namespaces = Namespaces(Store(js), remove_pod=None)  # type: ignore[arg-type]
    await namespaces.ensure_initial()
    await namespaces.ensure_initial()  # idempotent
    legacy = await request(admin, s.api("namespaces", "get"), {"name": "legacy"})
    assert legacy["status"]["phase"] == "Active"
    listed = await request(admin, s.api("namespaces", "list"), {})
    assert sorted(n["metadata"]["name"] for n in listed) == ["default", "legacy"]
