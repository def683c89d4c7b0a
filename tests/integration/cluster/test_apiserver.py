"""The apiserver against a real nats-server: store, CAS, admission, node restriction."""

from __future__ import annotations

import asyncio
import json

import pytest

from peapod.api.meta import JOB_TRACKING_FINALIZER as TRACKING
from peapod.bus import subjects as s
from peapod.bus.client import Credentials, connect, request
from peapod.bus.identity import new_seed
from peapod.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound, Unavailable

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "busybox:1"}]}}


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"capacity": {"cpu": "2", "memory": "1Gi"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


async def test_create_get_list_assigns_identity_and_resource_version(apiserver):
    admin = apiserver["admin"]
    created = await request(admin, s.api("pods", "create"), {"object": POD})
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) > 0
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}  # as Kubernetes sets it
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    assert got == created
    listed = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert [p["metadata"]["name"] for p in listed] == ["web"]
    assert await request(admin, s.api("pods", "list"), {"labelSelector": "app=db"}) == []


async def test_create_twice_is_already_exists(apiserver):
    admin = apiserver["admin"]
    await request(admin, s.api("pods", "create"), {"object": POD})
    with pytest.raises(AlreadyExists, match='pods "web" already exists'):
        await request(admin, s.api("pods", "create"), {"object": POD})


async def test_apply_reports_created_unchanged_configured_and_refuses_spec_change(apiserver):
    admin = apiserver["admin"]
    first = await request(admin, s.api("pods", "apply"), {"object": POD})
    assert first["action"] == "created"
    again = await request(admin, s.api("pods", "apply"), {"object": POD})
    assert again["action"] == "unchanged"
    relabelled = json.loads(json.dumps(POD))
    relabelled["metadata"]["labels"]["tier"] = "front"
    configured = await request(admin, s.api("pods", "apply"), {"object": relabelled})
    assert configured["action"] == "configured"
    assert configured["object"]["metadata"]["labels"] == {"app": "web", "tier": "front"}
    changed = json.loads(json.dumps(relabelled))
    changed["spec"]["containers"][0]["image"] = "busybox:2"
    with pytest.raises(Invalid, match="spec: Forbidden"):
        await request(admin, s.api("pods", "apply"), {"object": changed})


async def test_apply_with_a_stale_resource_version_is_a_conflict(apiserver):
    admin = apiserver["admin"]
    created = (await request(admin, s.api("pods", "apply"), {"object": POD}))["object"]
    seen = created["metadata"]["resourceVersion"]
    first = json.loads(json.dumps(POD))
    first["metadata"].update(resourceVersion=seen, labels={"app": "web", "v": "1"})
    applied = await request(admin, s.api("pods", "apply"), {"object": first})
    assert applied["action"] == "configured"
    second = json.loads(json.dumps(POD))  # written against the version the first one replaced
    second["metadata"].update(resourceVersion=seen, labels={"app": "web", "v": "2"})
    with pytest.raises(Conflict, match='on pods "web": the object has been modified'):
        await request(admin, s.api("pods", "apply"), {"object": second})
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    assert got["metadata"]["labels"] == {"app": "web", "v": "1"}
    assert got["metadata"]["resourceVersion"] == applied["object"]["metadata"]["resourceVersion"]


async def test_invalid_manifest_is_refused_and_nothing_is_stored(apiserver):
    admin = apiserver["admin"]
    bad = {**POD, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}}
    with pytest.raises(Invalid, match=r"spec\.containers\[1\]\.name: duplicate name"):
        await request(admin, s.api("pods", "create"), {"object": bad})
    assert await request(admin, s.api("pods", "list"), {}) == []


async def test_stale_write_gets_conflict_not_lost_update(apiserver):
    admin = apiserver["admin"]
    store_pod = await request(admin, s.api("pods", "create"), {"object": POD})
    await request(admin, s.api("nodes", "list"), {})
    nc = await connect(apiserver["creds"]["kubelet-node-a"], name="kubelet")
    await request(nc, s.node_api("node-a", "register"), {"object": node("node-a")})
    # two binds race with the same resourceVersion: exactly one wins
    results = await asyncio.gather(*(request(admin, s.api("pods", "bind"),
                                             {"namespace": "default", "name": "web",
                                              "nodeName": "node-a",
                                              "uid": store_pod["metadata"]["uid"]})
                                     for _ in range(2)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 1
    await nc.close()


async def test_node_restriction_kubelet_may_only_touch_its_own_pods(apiserver):
    admin, creds = apiserver["admin"], apiserver["creds"]
    a = await connect(creds["kubelet-node-a"], name="kubelet-a")
    b = await connect(creds["kubelet-node-b"], name="kubelet-b")
    await request(a, s.node_api("node-a", "register"), {"object": node("node-a")})
    with pytest.raises(Forbidden, match="may only register itself"):
        await request(b, s.node_api("node-b", "register"), {"object": node("node-a")})
    pod = await request(admin, s.api("pods", "create"), {"object": POD})
    await request(admin, s.api("pods", "bind"), {"namespace": "default", "name": "web",
                                                 "nodeName": "node-a"})
    status = {"namespace": "default", "name": "web", "uid": pod["metadata"]["uid"],
              "status": {"phase": "Running"}}
    await request(a, s.node_api("node-a", "status"), status)
    await request(b, s.node_api("node-b", "register"), {"object": node("node-b")})
    with pytest.raises(Forbidden, match="not bound to that node"):
        await request(b, s.node_api("node-b", "status"), status)
    # NATS itself refuses node-b publishing on node-a's subject, and says so
    with pytest.raises(Forbidden, match='User "kubelet-node-b" cannot publish on '
                                        r'peapod\.api\.v1\.node\.node-a\.status'):
        await request(b, s.node_api("node-a", "status"), status, timeout=1)
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    assert got["status"]["phase"] == "Running"
    await a.close()
    await b.close()


async def test_delete_unbound_pod_is_immediate_bound_pod_is_graceful(apiserver):
    admin, creds = apiserver["admin"], apiserver["creds"]
    await request(admin, s.api("pods", "create"), {"object": POD})
    done = await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "web"})
    assert done["finished"] is True
    with pytest.raises(NotFound):
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    # recreate over the deletion marker, bind, then delete gracefully
    pod = await request(admin, s.api("pods", "create"), {"object": POD})
    a = await connect(creds["kubelet-node-a"], name="kubelet-a")
    await request(a, s.node_api("node-a", "register"), {"object": node("node-a")})
    await request(admin, s.api("pods", "bind"), {"namespace": "default", "name": "web",
                                                 "nodeName": "node-a"})
    pending = await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "web"})
    assert pending["finished"] is False
    assert pending["object"]["metadata"]["deletionGracePeriodSeconds"] == 30
    await request(a, s.node_api("node-a", "finalize"),
                  {"namespace": "default", "name": "web", "uid": pod["metadata"]["uid"]})
    with pytest.raises(NotFound):
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    await a.close()


async def without_finalizer(admin, name: str) -> dict:
    pod = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": name})
    pod["metadata"]["finalizers"] = []
    return await request(admin, s.api("pods", "update"), {"object": pod})


async def test_a_pod_holding_the_job_tracking_finalizer_stays_until_it_is_removed(apiserver):
    """No controller runs here: the pod waits for whoever removes the finalizer."""
    admin, creds = apiserver["admin"], apiserver["creds"]
    held = {**POD, "metadata": {**POD["metadata"], "finalizers": [TRACKING]}}
    with pytest.raises(Invalid, match=r"metadata.finalizers\[0\]: Unsupported value: "
                                      r"'example.com/keep'"):
        await request(admin, s.api("pods", "create"), {"object": {
            **POD, "metadata": {**POD["metadata"], "finalizers": ["example.com/keep"]}}})
    await request(admin, s.api("pods", "create"), {"object": held})
    pending = await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "web"})
    assert pending["finished"] is False  # unbound, yet held
    assert pending["object"]["metadata"]["deletionGracePeriodSeconds"] == 0
    again = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    again["metadata"]["finalizers"] = [TRACKING, TRACKING + "2"]
    with pytest.raises(Invalid, match="Unsupported value"):
        await request(admin, s.api("pods", "update"), {"object": again})
    await without_finalizer(admin, "web")
    with pytest.raises(NotFound):
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})

    # bound: the kubelet's finalize leaves it held with grace 0, the last finalizer removes it
    pod = await request(admin, s.api("pods", "create"), {"object": held})
    a = await connect(creds["kubelet-node-a"], name="kubelet-a")
    await request(a, s.node_api("node-a", "register"), {"object": node("node-a")})
    await request(admin, s.api("pods", "bind"), {"namespace": "default", "name": "web",
                                                 "nodeName": "node-a"})
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "web"})
    await request(a, s.node_api("node-a", "finalize"),
                  {"namespace": "default", "name": "web", "uid": pod["metadata"]["uid"]})
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    assert got["metadata"]["deletionGracePeriodSeconds"] == 0
    assert got["metadata"]["finalizers"] == [TRACKING]
    await without_finalizer(admin, "web")
    with pytest.raises(NotFound):
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web"})
    await a.close()


async def test_wrong_credentials_are_refused_with_a_clear_error(cluster_creds):
    admin = cluster_creds["admin"]
    wrong = Credentials(url=admin.url, user="admin", seed=new_seed())
    with pytest.raises(Unavailable, match="refused user 'admin': 'Authorization Violation'"):
        await connect(wrong, name="wrong", reconnect=False)
    nobody = Credentials(url=admin.url, user="mallory", seed=new_seed())
    with pytest.raises(Unavailable, match="refused user 'mallory'"):
        await connect(nobody, name="mallory", reconnect=False)


async def test_a_delete_retries_a_write_made_meanwhile_instead_of_failing(apiserver):
    # Kubernetes' store retries a delete without preconditions when the object changed
    # under it (here a label writer stands in for the scheduler's Unschedulable condition,
    # which made a user's delete fail with Conflict once in a test run).
    admin = apiserver["admin"]

    async def relabel(name: str, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            try:
                got = await request(admin, s.api("pods", "get"), {"namespace": "default",
                                                                  "name": name})
                got["metadata"]["labels"]["n"] = str(n := n + 1)
                await request(admin, s.api("pods", "update"), {"object": got})
            except (Conflict, NotFound):
                pass

    for i in range(20):
        name = f"raced-{i}"
        pod = json.loads(json.dumps(POD))
        pod["metadata"]["name"] = name
        await request(admin, s.api("pods", "create"), {"object": pod})
        stop = asyncio.Event()
        writers = [asyncio.create_task(relabel(name, stop)) for _ in range(3)]
        await asyncio.sleep(0.05)
        try:
            done = await request(admin, s.api("pods", "delete"), {"namespace": "default",
                                                                  "name": name})
        finally:
            stop.set()
            await asyncio.gather(*writers)
        assert done["finished"] is True
        with pytest.raises(NotFound):
            await request(admin, s.api("pods", "get"), {"namespace": "default", "name": name})
