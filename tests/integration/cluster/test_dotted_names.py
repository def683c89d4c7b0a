"""Pod names with dots (``web.v1``, a valid DNS subdomain) end to end on real NATS and podman.

Before names were encoded as one subject token each, the fan-out split the key
``pods.default.web.v1`` into four parts: the pod was bound but never reached its
node's partition, so it never ran and could not be deleted without ``--force``.
"""

from __future__ import annotations

import json
import uuid

import pytest

from peapod.apiserver.store import OP_HEADER, Store
from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.replay import read_all
from peapod.errors import Invalid, NotFound
from tests.integration.cluster.test_fanout import wait_for
from tests.integration.cluster.test_kubelet import (
    apply,
    pod_manifest,
    podman_ids,
    running,
    wait_pod,
)


def pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}], **spec}}


async def test_a_dotted_name_is_fanned_out_to_its_watch_subject_and_its_nodes_partition(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    created = await request(admin, s.api("pods", "create"), {"object": pod("web.v1",
                                                                          nodeName="node-a")})
    watched = await wait_for(lambda: read_all(js, stream=s.WATCH_STREAM,
                                              subject=s.watch("pods", "default", "web.v1")))
    assert [json.loads(m.data)["metadata"]["uid"] for m in watched] == [created["metadata"]["uid"]]
    assert watched[0].subject == "peapod.watch.pods.default.web_v1"
    partition = await wait_for(lambda: read_all(js, stream=s.NODES_STREAM,
                                                subject=s.node_partition_all("node-a")))
    assert [m.subject for m in partition] == ["peapod.node.node-a.pods.default.web_v1"]
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "web.v1"})
    assert got["metadata"]["name"] == "web.v1"


async def test_a_dotted_node_name_does_not_land_in_another_nodes_partition(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    # the API refuses a node name that is not a DNS label; one stored before that rule (or
    # written around the API) must still go nowhere near node-a
    with pytest.raises(Invalid, match=r"spec\.nodeName: Invalid value"):
        await request(admin, s.api("pods", "create"), {"object": pod("evil", nodeName="node-a.x")})
    evil = pod("evil", nodeName="node-a.x")
    evil["metadata"].update(namespace="default", uid="u-evil")
    await js.publish(f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'default', 'evil')}",
                     json.dumps(evil).encode(), headers={OP_HEADER: "ADDED"})
    await request(admin, s.api("pods", "create"), {"object": pod("marker", nodeName="node-a")})
    partition = await wait_for(lambda: read_all(js, stream=s.NODES_STREAM,
                                                subject=s.node_partition_all("node-a")))
    assert [m.subject.rsplit(".", 1)[-1] for m in partition] == ["marker"]


async def test_an_object_stored_under_a_key_from_before_the_encoding_is_moved_to_its_new_key(
        apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    legacy = pod("old.v1")
    legacy["metadata"].update(namespace="default", uid="u-1", creationTimestamp="2026-01-01T00:00:00Z")
    await js.publish(f"$KV.{s.KV_BUCKET}.pods.default.old.v1", json.dumps(legacy).encode(),
                     headers={OP_HEADER: "ADDED"})
    store = Store(js)
    assert await store.rekey_legacy() == ["pods.default.old.v1"]
    assert await store.rekey_legacy() == []
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "old.v1"})
    assert got["metadata"]["uid"] == "u-1"
    listed = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert [p["metadata"]["name"] for p in listed] == ["old.v1"]
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "old.v1"})
    with pytest.raises(NotFound):
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "old.v1"})


@pytest.mark.podman
async def test_a_pod_named_with_dots_runs_and_is_deleted_gracefully_without_force(cluster):
    name = f"web.v1.{uuid.uuid4().hex[:6]}"
    await apply(cluster, pod_manifest(name, [
        {"name": "c", "image": "localhost/peapod-busybox:latest", "command": ["sleep", "3600"]}],
        terminationGracePeriodSeconds=2))
    pod_ = await wait_pod(cluster, name, running)
    uid = pod_["metadata"]["uid"]
    assert podman_ids(uid)
    await request(cluster["admin"], s.api("pods", "delete"), {"namespace": "default", "name": name})

    async def gone() -> bool:
        try:
            await request(cluster["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                    "name": name})
        except NotFound:
            return True
        return False

    await wait_for(gone, timeout=30)
    assert podman_ids(uid) == []
