"""Who may write events, against a real nats-server with the production permissions.

Events go through the apiserver: only it publishes on ``peapod.events.>``.
The scheduler asks on ``peapod.api.v1.events.create``; a kubelet on its own
``peapod.api.v1.node.<node>.events``, where it may write only about its own
Node and the pods bound to it. The attacks run with a kubelet's real
credentials; after each, the events stream is checked to hold nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats.errors
import pytest

from peapod.api import Event, now_rfc3339
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.bus.events import EventRecorder, latest_events
from peapod.bus.replay import read_all
from peapod.errors import Forbidden, Invalid


def pod(name: str, node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def event(kind: str, name: str, *, uid: str | None = None, host: str = "node-a",
          namespace: str = "default", **changes: object) -> dict:
    now = now_rfc3339()
    ref = {"kind": kind, "name": name, "apiVersion": "v1",
           **({"namespace": namespace} if kind == "Pod" else {}), **({"uid": uid} if uid else {})}
    doc = {"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": f"{name}.1", "namespace": namespace},
           "involvedObject": ref, "reason": "Started", "message": "Started container c",
           "type": "Normal", "source": {"component": "kubelet", "host": host},
           "firstTimestamp": now, "lastTimestamp": now, "count": 1}
    return {**doc, **changes}


async def stored_events(admin) -> list[Event]:
    msgs = await read_all(jetstream(admin), stream=s.EVENTS_STREAM, subject="peapod.events.>")
    return [Event.model_validate(json.loads(m.data)) for m in msgs]


@pytest.fixture
async def cluster(apiserver) -> AsyncIterator[dict]:
    """Pods on node-a and node-b, and a connection as each kubelet and as the scheduler."""
    creds, admin = apiserver["creds"], apiserver["admin"]
    pods = {}
    for name, node in (("mine", "node-a"), ("theirs", "node-b"), ("pending", None)):
        pods[name] = await request(admin, s.api("pods", "create"), {"object": pod(name, node)})
    conns = {user: await connect(creds[user], name=f"test-{user}")
             for user in ("kubelet-node-a", "kubelet-node-b", "scheduler")}
    try:
        yield {**apiserver, **conns, "pods": pods}
    finally:
        for nc in conns.values():
            await nc.close()


async def test_only_the_apiserver_may_publish_on_the_events_stream(cluster):
    for user in ("kubelet-node-a", "scheduler"):
        with pytest.raises((TimeoutError, nats.errors.Error)):  # the server drops it: no ack
            await jetstream(cluster[user]).publish(s.event("default", "Pod", "mine"),
                                                   json.dumps(event("Pod", "mine")).encode(),
                                                   timeout=0.5)
    assert await stored_events(cluster["admin"]) == []


async def test_a_kubelet_records_events_about_its_own_node_and_pods(cluster):
    recorder = EventRecorder.for_node(cluster["kubelet-node-a"], "node-a")
    await recorder.record(cluster["pods"]["mine"], reason="Started", message="Started container c")
    await recorder.record({"kind": "Node", "metadata": {"name": "node-a"}}, reason="Starting",
                          message="Starting kubelet.")
    events = await stored_events(cluster["admin"])
    assert [(e.involved_object.kind, e.involved_object.name, e.reason) for e in events] == [
        ("Pod", "mine", "Started"), ("Node", "node-a", "Starting")]
    assert {(e.source.component, e.source.host) for e in events if e.source} == {("kubelet", "node-a")}


async def test_the_scheduler_records_events_about_any_pod(cluster):
    recorder = EventRecorder(cluster["scheduler"], component="default-scheduler", host="cp")
    await recorder.record(cluster["pods"]["pending"], reason="FailedScheduling", type="Warning",
                          message="0/2 nodes are available: 2 Insufficient cpu.")
    await recorder.record(cluster["pods"]["theirs"], reason="Scheduled",
                          message="Successfully assigned default/theirs to node-b")
    assert [e.reason for e in await stored_events(cluster["admin"])] == ["FailedScheduling",
                                                                         "Scheduled"]


@pytest.mark.parametrize(("doc", "why"), [
    (event("Pod", "theirs"), 'pod default/theirs is bound to node "node-b"'),
    (event("Pod", "pending"), "pod default/pending is not bound to it"),
    (event("Pod", "ghost"), "pod default/ghost is not bound to it"),
    (event("Node", "node-b"), 'it is about node "node-b"'),
    (event("Namespace", "default", namespace="default"), "it is about a Namespace"),
    (event("Pod", "mine", host="node-b"), "the event names host 'node-b' as its source"),
    (event("Pod", "mine", reportingInstance="node-b"), "the event names host 'node-b'"),
])
async def test_a_kubelet_may_not_write_about_what_is_not_its_own(cluster, doc, why):
    if doc["involvedObject"]["name"] == "theirs":
        doc["involvedObject"]["uid"] = cluster["pods"]["theirs"]["metadata"]["uid"]
    with pytest.raises(Forbidden) as refused:
        await request(cluster["kubelet-node-a"], s.node_api("node-a", "events"), {"object": doc})
    assert refused.value.message.startswith(
        f'events "{doc["metadata"]["name"]}" is forbidden: node "node-a" may only record events '
        "about itself and the pods bound to it: "), refused.value.message
    assert why in refused.value.message
    assert await stored_events(cluster["admin"]) == []


async def test_a_kubelet_cannot_use_another_nodes_or_the_cluster_subject(cluster):
    for subject in (s.node_api("node-b", "events"), s.api("events", "create")):
        with pytest.raises(Forbidden, match='User "kubelet-node-a" cannot'):  # the server says no
            await request(cluster["kubelet-node-a"], subject,
                          {"object": event("Pod", "theirs", host="node-b")}, timeout=0.5)
    assert await stored_events(cluster["admin"]) == []


async def test_a_deleted_pod_is_still_its_nodes_to_write_about(cluster):
    admin, kubelet = cluster["admin"], cluster["kubelet-node-a"]
    old_uid = cluster["pods"]["mine"]["metadata"]["uid"]
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "mine",
                                                   "gracePeriodSeconds": 0})
    killing = event("Pod", "mine", uid=old_uid, reason="Killing", message="Stopping container c")
    await request(kubelet, s.node_api("node-a", "events"), {"object": killing})
    # recreated under the same name, not yet bound: the old incarnation is still node-a's,
    # the new one is nobody's
    new = await request(admin, s.api("pods", "create"), {"object": pod("mine")})
    await request(kubelet, s.node_api("node-a", "events"),
                  {"object": {**killing, "metadata": {"name": "mine.2", "namespace": "default"}}})
    with pytest.raises(Forbidden, match="pod default/mine is not bound to it"):
        await request(kubelet, s.node_api("node-a", "events"),
                      {"object": event("Pod", "mine", uid=new["metadata"]["uid"])})
    assert [e.metadata.name for e in await stored_events(admin)] == ["mine.1", "mine.2"]


@pytest.mark.parametrize(("doc", "problem"), [
    ({}, "request field 'object' must be a JSON object"),
    ({"object": [1]}, "request field 'object' must be a JSON object"),
    ({"object": {**event("Pod", "mine"), "extra": 1}}, "extra: unknown field"),
    ({"object": event("Pod", "mine", count=0)}, "count: invalid value 0"),
    ({"object": event("Pod", "mine", reason="")}, "reason: must be 1 to 128 characters"),
    ({"object": event("Pod", "mine", message="x" * 1025)}, "message: must be at most 1024"),
    ({"object": event("Pod", "mine", lastTimestamp="soon")}, "lastTimestamp: invalid value 'soon'"),
    ({"object": event("Pod", "mine", type="Fatal")}, "type: unsupported value 'Fatal'"),
    ({"object": event("Pod", "Mine")}, "involvedObject.name: invalid name 'Mine'"),
    ({"object": event("Pod", "mine", metadata={"namespace": "default"})},
     "metadata.name: required value"),
    ({"object": {**event("Pod", "mine"), "involvedObject": {"kind": "Pod", "name": "mine",
                                                            "namespace": "other"}}},
     "involvedObject.namespace: invalid value 'other': does not match"),
])
async def test_an_invalid_event_is_refused_whole_and_nothing_is_stored(cluster, doc, problem):
    for nc, subject in ((cluster["admin"], s.api("events", "create")),
                        (cluster["kubelet-node-a"], s.node_api("node-a", "events"))):
        with pytest.raises(Invalid) as refused:
            await request(nc, subject, doc)
        assert problem in refused.value.message
    assert await stored_events(cluster["admin"]) == []


async def test_a_kubelets_repeats_fold_through_the_apiserver(cluster):
    recorder = EventRecorder.for_node(cluster["kubelet-node-a"], "node-a")
    for _ in range(3):
        await recorder.record(cluster["pods"]["mine"], reason="BackOff", type="Warning",
                              message="Back-off restarting failed container c")
    copies = await stored_events(cluster["admin"])
    assert [c.count for c in copies] == [1, 2, 3]
    [folded] = latest_events(copies)
    assert folded.count == 3 and folded.first_timestamp == copies[0].first_timestamp


async def test_a_refused_event_is_logged_and_does_not_stop_the_recorder(cluster):
    from structlog.testing import capture_logs
    recorder = EventRecorder.for_node(cluster["kubelet-node-a"], "node-a")
    with capture_logs() as logs:
        await recorder.record(cluster["pods"]["theirs"], reason="Started", message="nope")
    [line] = [entry for entry in logs if entry["event"] == "event_not_recorded"]
    assert (line["namespace"], line["name"], line["reason"]) == ("default", "theirs", "Started")
    assert "forbidden" in line["error"]
    assert await stored_events(cluster["admin"]) == []
