"""Every subject a component reads, fed junk: a clear error or one log line, and nothing else.

One table, one row per subject a component reads: the API requests the
apiserver answers, a kubelet's own requests, the ``exec`` and ``logs``
requests a kubelet answers, a node's partition, a lease, and the KV bucket
the fan-out and the scheduler follow (the CLI's readers of the watch and
events streams have their own tests: ``test_watch_readers.py``,
``test_event_readers.py``). Each row is fed, with the credentials of who
may publish there: bodies that are not JSON, not UTF-8, empty, a JSON list
or string, fields of the wrong types, an unknown kind, a body just under
NATS' ``max_payload`` (not one over it: see the test), and a valid-looking
object about another node. For each:

* a request gets an error reply with a code a client acts on (``Invalid``,
  ``Forbidden``, ``NotFound``, ``Conflict``; never an internal error) and a
  message of one line; a stream message gets one log line;
* nothing is stored: the KV bucket (every key's revision) is the same after;
  a partition message reaches no podman;
* the component still serves: a good request on the same subject right
  after succeeds (a running pod for the kubelet's subjects).

The cluster is the real one: nats-server with peapod's permissions, the
apiserver, the scheduler and node-a's kubelet in-process on real podman,
started once for the module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.auth import write_cluster_config
from peapod.bus.client import connect, jetstream, request
from peapod.bus.replay import read_all
from peapod.errors import NotFound
from peapod.scheduler.main import run as run_scheduler
from tests.integration.cluster.nodes import Node
from tests.integration.cluster.test_kubelet import podman_ids
from tests.natsd import NATSD, free_port

pytestmark = [pytest.mark.podman, pytest.mark.asyncio(loop_scope="module")]

IMAGE = "localhost/peapod-busybox:latest"
CLEAR = {"Invalid", "Forbidden", "NotFound", "Conflict"}


def pod(name: str, node: str | None = None, **meta: Any) -> dict:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
           "spec": {"containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
                    "terminationGracePeriodSeconds": 1}}
    if node:
        doc["spec"]["nodeName"] = node
    return doc


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory, podman_socket) -> AsyncIterator[dict]:
    root = tmp_path_factory.mktemp("bad-input")
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(root / "state"), nodes=["node-a", "node-b"], port=port,
                                 http_port=http_port)
    natsd = NATSD(root / "state" / "nats.conf", http_port)
    natsd.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_apiserver(creds["apiserver"], stop=stop)),
             asyncio.create_task(run_scheduler(creds["scheduler"], stop=stop))]
    conns = {user: await connect(creds[user], name=f"test-{user}")
             for user in ("admin", "scheduler", "kubelet-node-a", "kubelet-node-b")}
    admin = conns["admin"]
    node = Node(creds, "node-a", root / "kubelet", podman_socket)
    ctx = {**conns, "creds": creds, "js": jetstream(admin), "uids": []}
    try:
        node.start()
        await until(lambda: request(admin, s.api("nodes", "get"), {"name": "node-a"}))
        # node-b is registered but has no kubelet: pods bound to it stay put, nothing churns
        await request(conns["kubelet-node-b"], s.node_api("node-b", "register"),
                      {"object": {"apiVersion": "v1", "kind": "Node",
                                  "metadata": {"name": "node-b"}}})
        ctx["target"] = await request(admin, s.api("pods", "create"),
                                      {"object": pod("target", "node-a")})
        ctx["theirs"] = await request(admin, s.api("pods", "create"),
                                      {"object": pod("theirs", "node-b")})
        await running(ctx, "target")
        yield ctx
    finally:
        for item in await request(admin, s.api("pods", "list"), {}):
            with contextlib.suppress(NotFound):
                await request(admin, s.api("pods", "delete"), {
                    "namespace": item["metadata"]["namespace"], "name": item["metadata"]["name"],
                    "gracePeriodSeconds": 0 if item["spec"].get("nodeName") == "node-b" else 1})
        with contextlib.suppress(AssertionError):
            await until(lambda: _none_left(admin), timeout=60)
        await node.halt()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        for nc in conns.values():
            await nc.close()
        natsd.stop()


async def _none_left(admin) -> bool:
    return not await request(admin, s.api("pods", "list"), {})


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Exception | None = None
    while loop.time() < deadline:
        try:
            if result := await probe():
                return result
        except Exception as exc:  # not there yet
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"not in time (last error: {last})")


async def running(ctx: dict, name: str) -> dict:
    async def probe() -> dict | None:
        got = await request(ctx["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                 "name": name})
        return got if got.get("status", {}).get("phase") == "Running" else None
    return await until(probe)  # type: ignore[no-any-return]


async def kv_snapshot(js) -> dict[str, int]:
    """Every key of the bucket with its revision: what "nothing stored" is compared on."""
    msgs = await read_all(js, stream=s.KV_STREAM, subject=f"$KV.{s.KV_BUCKET}.>",
                          last_per_subject=True)
    return {m.subject: m.metadata.sequence.stream for m in msgs}


# -- the junk ---------------------------------------------------------------------------------

MAX_PAYLOAD = 1024 * 1024  # nats-server's default, which peapod keeps


def huge_pod(size: int) -> dict:
    """A Pod whose JSON is about ``size`` bytes, most of it one annotation."""
    doc = pod("huge", annotations={"note": ""})
    doc["metadata"]["annotations"]["note"] = "x" * (size - len(json.dumps(doc)))
    return doc


def envelope_just_under(payload: dict) -> bytes:
    """``payload`` with an ``object`` grown until the body is just under max_payload."""
    body = json.dumps({**payload, "object": huge_pod(MAX_PAYLOAD - 4096)}).encode()
    assert MAX_PAYLOAD - 8192 < len(body) < MAX_PAYLOAD
    return body


GENERIC: dict[str, bytes] = {
    "not-json": b"{not json",
    "not-utf8": b"\xff\xfe\xfd\x00",
    "empty": b"",
    "list": b"[1, 2, 3]",
    "string": b'"pods"',
    "number": b"42",
}


@dataclass
class Row:
    """A subject a component reads, who may publish there, and what to feed it."""

    id: str
    user: str
    subject: str
    good: Callable[[dict], Awaitable[Any]]  # a request that must succeed after the junk
    wrong_types: dict  # the request's own fields with values of the wrong type
    unknown_kind: dict | None = None  # an object of a kind this subject does not take
    other_node: dict | None = None  # a valid-looking request about another node's pod
    huge: bytes | None = None  # defaults to wrong_types grown to just under max_payload
    cases: dict[str, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.cases = dict(GENERIC)
        self.cases["wrong-types"] = json.dumps(self.wrong_types).encode()
        if self.unknown_kind is not None:
            self.cases["unknown-kind"] = json.dumps(self.unknown_kind).encode()
        if self.other_node is not None:
            self.cases["other-node"] = json.dumps(self.other_node).encode()
        self.cases["just-under-max-payload"] = self.huge or envelope_just_under(self.wrong_types)


BANANA = {"apiVersion": "v1", "kind": "Banana", "metadata": {"name": "b"}}
WRONG_META = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5, "labels": "all"},
              "spec": {"containers": {"name": "c"}}}


def _pod_ref(ctx: dict, name: str) -> dict:
    got = ctx[name]
    return {"namespace": "default", "name": name, "uid": got["metadata"]["uid"]}


async def _create_on_b(ctx: dict, verb: str = "create") -> Any:
    name = f"good-{len(ctx['uids'])}"
    created = await request(ctx["admin"], s.api("pods", verb), {"object": pod(name, "node-b")})
    ctx["uids"].append(name)
    return created


async def _status(ctx: dict) -> Any:
    target = await request(ctx["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                "name": "target"})
    return await request(ctx["kubelet-node-a"], s.node_api("node-a", "status"),
                         {**_pod_ref(ctx, "target"), "status": target["status"]})


async def _exec(ctx: dict) -> Any:
    result = await request(ctx["admin"], s.kubelet("node-a", "exec"), {
        "namespace": "default", "name": "target", "container": "c", "command": ["echo", "ok"]})
    assert base64.b64decode(result["stdout"]) == b"ok\n"
    return result


def _event(host: str, obj: dict) -> dict:
    now = "2026-01-01T00:00:00Z"
    return {"object": {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{obj['name']}.probe", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", **obj},
        "reason": "Probe", "message": "still serving", "type": "Normal",
        "source": {"component": "kubelet", "host": host},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1}}


ROWS = [
    Row("pods.create", "admin", s.api("pods", "create"), _create_on_b,
        {"object": WRONG_META, "namespace": 7}, unknown_kind={"object": BANANA}),
    Row("pods.apply", "admin", s.api("pods", "apply"), lambda ctx: _create_on_b(ctx, "apply"),
        {"object": "pod", "namespace": ["default"]}, unknown_kind={"object": BANANA}),
    Row("pods.get", "admin", s.api("pods", "get"),
        lambda ctx: request(ctx["admin"], s.api("pods", "get"), _pod_ref(ctx, "target")),
        {"namespace": {"a": 1}, "name": 5}),
    Row("pods.list", "admin", s.api("pods", "list"),
        lambda ctx: request(ctx["admin"], s.api("pods", "list"), {}),
        {"namespace": 5, "labelSelector": ["a"], "fieldSelector": {"b": 1}}),
    Row("pods.delete", "admin", s.api("pods", "delete"),
        lambda ctx: request(ctx["admin"], s.api("pods", "get"), _pod_ref(ctx, "target")),
        {"namespace": "default", "name": "target", "gracePeriodSeconds": "now"}),
    Row("pods.bind", "scheduler", s.api("pods", "bind"),
        lambda ctx: request(ctx["admin"], s.api("nodes", "list"), {}),
        {"namespace": "default", "name": ["target"], "nodeName": 3},
        other_node={"namespace": "default", "name": "theirs", "nodeName": "node-a"}),
    Row("pods.unschedulable", "scheduler", s.api("pods", "unschedulable"),
        lambda ctx: request(ctx["admin"], s.api("nodes", "list"), {}),
        {"namespace": "default", "name": ["target"], "message": 3},
        other_node={"namespace": "default", "name": "theirs", "message": "0/2 nodes"}),
    Row("events.create", "scheduler", s.api("events", "create"),
        lambda ctx: request(ctx["scheduler"], s.api("events", "create"),
                            _event("node-a", _pod_ref(ctx, "target"))),
        {"object": {**_event("x", {"name": "y"})["object"], "count": "many"}},
        unknown_kind={"object": BANANA}),
    Row("namespaces.create", "admin", s.api("namespaces", "create"),
        lambda ctx: request(ctx["admin"], s.api("namespaces", "get"), {"name": "default"}),
        {"object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ["x"]}}},
        unknown_kind={"object": BANANA}),
    Row("node.register", "kubelet-node-a", s.node_api("node-a", "register"),
        lambda ctx: request(ctx["admin"], s.api("nodes", "get"), {"name": "node-a"}),
        {"object": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
                    "status": {"conditions": "Ready"}}},
        unknown_kind={"object": {**BANANA, "metadata": {"name": "node-a"}}},
        other_node={"object": {"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": "node-b"}}}),
    Row("node.status", "kubelet-node-a", s.node_api("node-a", "status"), _status,
        {"namespace": "default", "name": "target", "status": {"phase": 5, "podIP": []}},
        other_node={"namespace": "default", "name": "theirs", "status": {"phase": "Failed"}}),
    Row("node.finalize", "kubelet-node-a", s.node_api("node-a", "finalize"),
        lambda ctx: request(ctx["admin"], s.api("pods", "get"), _pod_ref(ctx, "target")),
        {"namespace": 1, "name": {"target": True}},
        other_node={"namespace": "default", "name": "theirs"}),
    Row("node.events", "kubelet-node-a", s.node_api("node-a", "events"),
        lambda ctx: request(ctx["kubelet-node-a"], s.node_api("node-a", "events"),
                            _event("node-a", _pod_ref(ctx, "target"))),
        {"object": {**_event("node-a", {"name": "target"})["object"], "involvedObject": "me"}},
        unknown_kind={"object": BANANA},
        other_node={**_event("node-a", {"namespace": "default", "name": "theirs"})}),
    Row("kubelet.exec", "admin", s.kubelet("node-a", "exec"), _exec,
        {"namespace": "default", "name": "target", "container": ["c"], "command": "echo ok"}),
    Row("kubelet.logs", "admin", s.kubelet("node-a", "logs"),
        lambda ctx: request(ctx["admin"], s.kubelet("node-a", "logs"),
                            {"namespace": "default", "name": "target", "tail": 1}),
        {"namespace": "default", "name": "target", "tail": "ten", "follow": "yes"}),
    Row("kubelet.stats", "admin", s.kubelet("node-a", "stats"),
        lambda ctx: request(ctx["admin"], s.kubelet("node-a", "stats"), {}),
        {"pods": ["target"], "window": "1h"}),
]


async def raw_request(nc, subject: str, body: bytes) -> dict:
    msg = await nc.request(subject, body, timeout=10)
    reply = json.loads(msg.data)
    assert isinstance(reply, dict) and set(reply) <= {"error", "result"}, reply
    return reply


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_a_request_subject_refuses_junk_clearly_stores_nothing_and_keeps_serving(
        cluster, row: Row):
    js = cluster["js"]
    sender = cluster[row.user]
    for case, body in row.cases.items():
        before = await kv_snapshot(js)
        reply = await raw_request(sender, row.subject, body)
        error = reply.get("error")
        assert error, f"{row.id} {case}: accepted: {str(reply)[:300]}"
        assert error["code"] in CLEAR, f"{row.id} {case}: {error}"
        assert error["message"] and "\n" not in error["message"], f"{row.id} {case}: {error}"
        assert len(error["message"]) < 2000, f"{row.id} {case}: the message echoes the junk"
        assert await kv_snapshot(js) == before, f"{row.id} {case}: something was stored"
        await row.good(cluster)  # still serving, at once
    # A body over max_payload has its own test, below, on a connection of its own: the
    # server drops the connection that sent it, and these senders are shared.


async def test_a_body_over_max_payload_is_dropped_by_the_server_and_nothing_changes(cluster):
    """Sent past nats-py's own check, by a connection of its own: nats-server closes that
    connection before any component sees the body, and everything else carries on."""
    js = cluster["js"]
    before = await kv_snapshot(js)
    hostile = await connect(cluster["creds"]["kubelet-node-b"], name="test-hostile",
                            reconnect=False)
    hostile._max_payload = 4 * MAX_PAYLOAD  # what a client that ignores the limit sends
    body = json.dumps({"namespace": "default", "name": "theirs",
                       "status": {"phase": "Failed", "message": "x" * (2 * MAX_PAYLOAD)}})
    with contextlib.suppress(Exception):  # the server answers by closing the connection
        await hostile.request(s.node_api("node-b", "status"), body.encode(), timeout=3)
    await until(lambda: asyncio.sleep(0, hostile.is_closed))
    assert await kv_snapshot(js) == before
    theirs = await request(cluster["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                    "name": "theirs"})
    assert theirs.get("status", {}).get("phase") != "Failed"
    await running(cluster, "target")  # the apiserver answers, the kubelet runs on


# -- streams: one log line per message, nothing stored, still following ----------------------

STREAM_JUNK = {**GENERIC, "wrong-types": json.dumps(WRONG_META).encode(),
               "unknown-kind": json.dumps(BANANA).encode()}


def podman_pods_of(uid: str) -> list[str]:
    out = subprocess.run(["podman", "pod", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={uid}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


async def test_a_nodes_partition_skips_junk_and_other_nodes_pods(cluster):
    """The kubelet reads its partition ``peapod.node.node-a.>`` (only the apiserver and the
    admin publish there): junk, a pod of node-b, a pod at another pod's subject, each one
    ``partition_message_skipped``; none reaches podman; the next pod runs."""
    js = cluster["js"]
    theirs = cluster["theirs"]
    misplaced = {**cluster["target"], "metadata": {**cluster["target"]["metadata"],
                                                   "uid": "u-misplaced"}}
    junk = {**STREAM_JUNK,
            "other-node": json.dumps(theirs).encode(),
            "other-subject": json.dumps(misplaced).encode(),
            "just-under-max-payload": json.dumps(huge_pod(MAX_PAYLOAD - 4096)).encode()}
    # one subject each: a partition keeps the last message per subject
    subjects = [s.node_partition("node-a", "default", f"junk-{i}") for i in range(len(junk))]
    before = await kv_snapshot(js)
    with capture_logs() as logs:
        for subject, body in zip(subjects, junk.values(), strict=True):
            await js.publish(subject, body)
        created = await request(cluster["admin"], s.api("pods", "create"),
                                {"object": pod("after-partition-junk", "node-a")})
        await running(cluster, "after-partition-junk")
    skipped = [e for e in logs if e["event"] == "partition_message_skipped"]
    assert len(skipped) == len(junk), skipped
    reasons = {e["subject"]: e["reason"] for e in skipped}
    assert set(reasons) == set(subjects)
    assert "is bound to node 'node-b'" in reasons[subjects[-3]], reasons
    assert "does not belong on this subject" in reasons[subjects[-2]], reasons
    assert not [e for e in logs if e["event"] in ("task_crashed", "sync_failed")]
    assert podman_pods_of(theirs["metadata"]["uid"]) == []
    assert podman_pods_of("u-misplaced") == []
    after = await kv_snapshot(js)
    new = {k for k in after if after[k] != before.get(k)}
    assert new == {f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'default', 'after-partition-junk')}"}
    assert podman_ids(created["metadata"]["uid"])


async def test_junk_in_a_lease_is_a_renewal_and_nothing_else(cluster):
    """A kubelet may write only its own lease; a value there is never read (its time is the
    renewal), so junk in it changes nothing but that time; the apiserver and the scheduler
    keep following the bucket."""
    js = jetstream(cluster["kubelet-node-a"])
    before = await kv_snapshot(cluster["js"])
    with capture_logs() as logs:
        for body in (*STREAM_JUNK.values(), b"x" * (MAX_PAYLOAD // 2)):
            await js.publish(s.lease("node-a"), body)
    assert await kv_snapshot(cluster["js"]) == before
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    node = await request(cluster["admin"], s.api("nodes", "get"), {"name": "node-a"})
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


async def test_junk_in_the_bucket_is_skipped_by_the_fanout_and_the_scheduler(cluster):
    """Values written into the KV bucket by hand (the admin may): the fan-out and the
    scheduler's informer each skip them with one line; the next pod is still scheduled."""
    js = cluster["js"]
    with capture_logs() as logs:
        for i, body in enumerate(STREAM_JUNK.values()):
            key = s.kv_key("pods", "default", f"kv-junk-{i}")
            await js.publish(f"$KV.{s.KV_BUCKET}.{key}", body)
        await request(cluster["admin"], s.api("pods", "create"),
                      {"object": pod("after-bucket-junk")})
        await running(cluster, "after-bucket-junk")
    fanout = [e for e in logs if e["event"] == "change_value_skipped"]
    scheduler = [e for e in logs if e["event"] == "watch_value_skipped"
                 and e.get("bucket") == s.KV_BUCKET]
    # the empty value is a deletion-like marker the fan-out names on its own line
    assert len(fanout) + len([e for e in logs if e["event"] == "change_without_body"]) == \
        len(STREAM_JUNK), fanout
    assert len(scheduler) >= len(STREAM_JUNK) - 1, scheduler
    assert not [e for e in logs if e["event"] == "task_crashed"]
    watched = await read_all(js, stream=s.WATCH_STREAM, subject=s.watch_all("pods"))
    assert not [m for m in watched if "kv-junk" in m.subject]
