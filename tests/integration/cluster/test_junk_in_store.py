"""Junk in the KV bucket: values that are not the object their key names.

Only the apiserver writes the bucket, through the models; but anyone with the
store's credentials can write a value by hand, and a write can be cut short.
Such a value used to stop the fan-out for good (it crashed on the value,
was restarted, was handed the same unacknowledged value again: every later
change waited behind it) and made every ``pods list`` an internal error.
Now each reader of stored values skips it with one log line: the fan-out
acknowledges it without republishing it, a list leaves it out, a get names
the key and why. The junk is written with the admin's credentials into the
real bucket of a real nats-server; the apiserver runs in-process.
"""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.replay import read_all
from peapod.errors import PeapodError
from tests.integration.cluster.test_fanout import pod, wait_for, watch_messages


def bound(name: str, **spec: object) -> dict:
    doc = pod(name)
    doc["metadata"].update(namespace="default", uid=f"uid-{name}")
    doc["spec"].update(nodeName="node-a", **spec)
    return doc


# (name, value): not JSON, not UTF-8, cut short, the wrong JSON type, the wrong field types,
# an unknown field, and a valid Pod stored under another pod's key
JUNK = [
    ("j-text", b"this is not json"),
    ("j-bytes", b"\xff\xfe\x00"),
    ("j-cut", json.dumps(bound("j-cut")).encode()[:40]),
    ("j-list", b"[1, 2, 3]"),
    ("j-types", json.dumps({**bound("j-types"), "spec": "containers"}).encode()),
    ("j-field", json.dumps(bound("j-field", notAField=True)).encode()),
    ("j-other", json.dumps(bound("someone-else")).encode()),
]


async def write_junk(js) -> None:
    for name, value in JUNK:
        await js.publish(f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'default', name)}", value)


async def test_the_fanout_skips_junk_values_and_carries_on(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    with capture_logs() as logs:
        await write_junk(js)
        created = await request(admin, s.api("pods", "create"), {"object": pod("after")})
        msgs = await wait_for(lambda: watch_messages(js, "after"))
    assert json.loads(msgs[0].data)["metadata"]["uid"] == created["metadata"]["uid"]
    skipped = [e for e in logs if e["event"] == "change_value_skipped"]
    assert sorted(e["key"] for e in skipped) == sorted(
        s.kv_key("pods", "default", name) for name, _ in JUNK), skipped
    assert not [e for e in logs if e["event"] == "task_crashed"]
    reasons = {e["key"].rsplit(".", 1)[1]: e["reason"] for e in skipped}
    assert reasons["j-text"].startswith("not JSON") and reasons["j-bytes"].startswith("not JSON")
    assert reasons["j-list"] == "not a Pod: a JSON list, not an object"
    assert "spec:" in reasons["j-types"] and "spec.notAField: unknown field" in reasons["j-field"]
    assert "someone-else" in reasons["j-other"]
    # nothing of the junk reached a reader: the watch stream and node-a's partition
    watched = await read_all(js, stream=s.WATCH_STREAM, subject=s.watch_all("pods"))
    assert [m.subject for m in watched] == [s.watch("pods", "default", "after")]
    assert await read_all(js, stream=s.NODES_STREAM, subject=s.node_partition_all("node-a")) == []


async def test_lists_leave_junk_out_and_a_get_names_it(apiserver):
    admin = apiserver["admin"]
    await request(admin, s.api("pods", "create"), {"object": pod("good")})
    await write_junk(jetstream(admin))
    with capture_logs() as logs:
        listed = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert [p["metadata"]["name"] for p in listed] == ["good"]
    assert len([e for e in logs if e["event"] == "stored_value_skipped"]) == len(JUNK)
    assert [p["metadata"]["name"] for p in await request(admin, s.api("pods", "list"), {})] == ["good"]
    with pytest.raises(PeapodError) as caught:
        await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "j-list"})
    assert caught.value.message.startswith('pods "j-list" cannot be read: its stored value')
    assert caught.value.message.endswith("is not a Pod: a JSON list, not an object")
