"""The informer against the real nats-server: no gap, no duplicate, resume, junk skipped.

The informer connects as the scheduler, with the scheduler's production
permissions, so these tests also show that a read-only KV user can list and
watch. Writes go through plain KV puts and deletes, as the apiserver's
store makes them (deletion markers carry ``KV-Operation: DEL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.bus.client import connect, jetstream
from peapod.bus.informer import Informer, WatchEvent, WatchInterrupted
from tests.unit.bus.conftest import BUCKET, Server


def as_dict(key: str, data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise TypeError(f"not an object: {type(value).__name__}")
    return value


def as_pod(key: str, data: bytes) -> Pod:
    return Pod.model_validate(json.loads(data))


def pod(name: str, **labels: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": "default", "labels": labels},
                       "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}).encode()


@contextlib.asynccontextmanager
async def running(informer: Informer[Any]) -> AsyncIterator[list[WatchEvent[Any]]]:
    events: list[WatchEvent[Any]] = []
    informer.add_handler(events.append)
    task = asyncio.create_task(informer.run())
    try:
        yield events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def reader(server: Server, decode: Callable[[str, bytes], Any],
                 **kwargs: Any) -> tuple[NATS, Informer[Any]]:
    nc = await connect(server.creds["scheduler"], name="test-informer")
    return nc, Informer(jetstream(nc), bucket=BUCKET, decode=decode, **kwargs)


async def test_list_then_watch_under_concurrent_writes_has_no_gap_and_no_duplicate(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    keys = [f"pods.default.p{i}" for i in range(8)]
    written = dict.fromkeys(keys, 0)
    for key in keys[:4]:  # some objects exist before the list
        written[key] += 1
        await kv.put(key, json.dumps({"n": written[key]}).encode())

    async def write(rounds: int) -> None:
        for r in range(rounds):
            key = keys[r % len(keys)]
            written[key] += 1
            await kv.put(key, json.dumps({"n": written[key]}).encode())
            if r % 7 == 0:
                await asyncio.sleep(0)

    nc, informer = await reader(server, as_dict)
    writer = asyncio.create_task(write(400))  # writes race the list
    async with running(informer) as events:
        await writer
        await eventually(lambda: {k: v.obj["n"] for k, v in informer.cache.items()} == written)
        assert informer.synced.is_set()
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions))  # in order, none twice
    for key in keys:
        seen = [e.obj["n"] for e in events if e.key == key]
        # each key: its state at the list, then every later write, none missed or repeated
        assert seen == list(range(seen[0], written[key] + 1)), key
        assert [e.type for e in events if e.key == key] == ["ADDED"] + ["MODIFIED"] * (len(seen) - 1)
    await nc.close()
    await admin.close()


async def test_deletions_are_typed_and_carry_the_last_object(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    await kv.put("pods.default.gone-before", pod("gone-before"))
    await kv.delete("pods.default.gone-before")  # a marker at list time: not an object
    await kv.put("pods.default.a", pod("a"))
    nc, informer = await reader(server, as_pod)
    async with running(informer) as events:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await kv.put("pods.default.a", pod("a", tier="web"))
        await kv.delete("pods.default.a")
        await eventually(lambda: len(events) == 3)
    assert [(e.type, e.key) for e in events] == [
        ("ADDED", "pods.default.a"), ("MODIFIED", "pods.default.a"), ("DELETED", "pods.default.a")]
    assert events[2].obj.metadata.labels == {"tier": "web"}
    assert informer.cache == {}
    await nc.close()
    await admin.close()


async def test_an_empty_bucket_is_synced_at_once(server):
    nc, informer = await reader(server, as_pod)
    async with running(informer) as events:
        await asyncio.wait_for(informer.synced.wait(), 5)
        assert events == [] and informer.revision == 0
    await nc.close()


async def test_junk_values_are_skipped_with_one_line_each(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    await kv.put("pods.default.a", pod("a"))
    await kv.put("pods.default.junk1", b"\xff not json")
    nc, informer = await reader(server, as_pod)
    with capture_logs() as logs:
        async with running(informer) as events:
            await asyncio.wait_for(informer.synced.wait(), 5)
            await kv.put("pods.default.junk2", b"[1, 2]")
            await kv.put("pods.default.a", b'{"kind": "Pod", "metadata": {"name": "a"}, "spec": 3}')
            await kv.put("pods.default.b", pod("b"))
            await eventually(lambda: "pods.default.b" in informer.cache)
    skipped = [e for e in logs if e["event"] == "watch_value_skipped"]
    assert [e["key"] for e in skipped] == ["pods.default.junk1", "pods.default.junk2",
                                           "pods.default.a"]
    assert all(e["log_level"] == "warning" and e["reason"] for e in skipped)
    # the invalid update left the last valid object in the cache
    assert [(e.type, e.key) for e in events] == [("ADDED", "pods.default.a"),
                                                 ("ADDED", "pods.default.b")]
    assert informer.cache["pods.default.a"].obj.metadata.name == "a"
    await nc.close()
    await admin.close()


async def test_a_server_restart_resumes_from_the_last_revision(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    for name in ("a", "c"):
        await kv.put(f"pods.default.{name}", pod(name))
    nc, informer = await reader(server, as_pod, check_every=0.2)
    with capture_logs() as logs:
        async with running(informer) as events:
            await asyncio.wait_for(informer.synced.wait(), 5)
            await asyncio.to_thread(server.restart)
            await admin.close()
            admin = await connect(server.creds["admin"], name="writer-after")
            kv = await jetstream(admin).key_value(BUCKET)
            await kv.put("pods.default.b", pod("b"))
            await kv.put("pods.default.a", pod("a", v="2"))
            await kv.delete("pods.default.c")
            await eventually(lambda: len(events) >= 5)
            await asyncio.sleep(0.5)  # anything else would be a duplicate
    assert [(e.type, e.key) for e in events] == [
        ("ADDED", "pods.default.a"), ("ADDED", "pods.default.c"),
        ("ADDED", "pods.default.b"), ("MODIFIED", "pods.default.a"),
        ("DELETED", "pods.default.c")]
    assert sorted(informer.cache) == ["pods.default.a", "pods.default.b"]
    assert next(e["resume_from"] for e in logs if e["event"] == "watch_interrupted") == 3
    await nc.close()
    await admin.close()


async def test_a_lost_consumer_resumes_without_gap_or_duplicate(server):
    admin = await connect(server.creds["admin"], name="writer")
    js = jetstream(admin)
    kv = await js.key_value(BUCKET)
    await kv.put("pods.default.a", pod("a"))
    nc, informer = await reader(server, as_pod, check_every=0.2)
    with capture_logs() as logs:
        async with running(informer) as events:
            await asyncio.wait_for(informer.synced.wait(), 5)
            for name in (await js.consumers_info(f"KV_{BUCKET}")):
                await js.delete_consumer(f"KV_{BUCKET}", name.name)
            await kv.put("pods.default.b", pod("b"))  # written while no consumer exists
            await eventually(lambda: any(e["event"] == "watch_interrupted" for e in logs))
            await kv.put("pods.default.c", pod("c"))
            await eventually(lambda: len(events) >= 3)
            await asyncio.sleep(0.5)
    assert [(e.type, e.key) for e in events] == [
        ("ADDED", "pods.default.a"), ("ADDED", "pods.default.b"), ("ADDED", "pods.default.c")]
    interrupted = [e for e in logs if e["event"] == "watch_interrupted"]
    assert interrupted[0]["resume_from"] == 2
    await nc.close()
    await admin.close()


async def test_a_forced_reconnect_resumes_without_gap_or_duplicate(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    await kv.put("pods.default.a", pod("a"))
    nc, informer = await reader(server, as_pod, check_every=0.2)
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc._reconnected_cb = on_reconnect
    async with running(informer) as events:
        await asyncio.wait_for(informer.synced.wait(), 5)
        nc._transport._io_writer.transport.abort()  # the socket drops under the client
        for i in range(20):  # writes while the informer is away, and as it comes back
            await kv.put(f"pods.default.w{i % 4}", pod(f"w{i % 4}", n=str(i)))
            await asyncio.sleep(0.05)
        await asyncio.wait_for(reconnected.wait(), 10)
        await kv.put("pods.default.z", pod("z"))
        await eventually(lambda: "pods.default.z" in informer.cache)
        await asyncio.sleep(0.5)
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions))
    for k in range(4):
        seen = [int(e.obj.metadata.labels["n"]) for e in events if e.key == f"pods.default.w{k}"]
        assert seen == list(range(k, 20, 4))  # every write, in order, none twice
    assert {k: v.obj.metadata.labels for k, v in informer.cache.items()}["pods.default.w3"] == {"n": "19"}
    await nc.close()
    await admin.close()


def delivered(key: str, data: bytes, *, stream_seq: int, consumer_seq: int, pending: int = 0) -> Msg:
    reply = f"$JS.ACK.KV_{BUCKET}.c.1.{stream_seq}.{consumer_seq}.1700000000000000000.{pending}"
    return Msg(_client=None, subject=f"$KV.{BUCKET}.{key}", reply=reply, data=data)  # type: ignore[arg-type]


def test_a_skipped_consumer_sequence_interrupts_the_watch_and_an_old_revision_is_dropped():
    informer: Informer[Pod] = Informer(None, bucket=BUCKET, decode=as_pod)  # type: ignore[arg-type]
    events: list[WatchEvent[Pod]] = []
    informer.add_handler(events.append)
    informer._receive(delivered("pods.default.a", pod("a"), stream_seq=5, consumer_seq=1))
    with pytest.raises(WatchInterrupted, match="consumer sequence 3 after 1"):
        informer._receive(delivered("pods.default.b", pod("b"), stream_seq=9, consumer_seq=3))
    assert informer.revision == 5  # the next consumer starts at 6: b arrives again, once
    informer._consumer_seq = 0  # a new consumer
    informer._receive(delivered("pods.default.a", pod("a"), stream_seq=5, consumer_seq=1))
    informer._receive(delivered("pods.default.b", pod("b"), stream_seq=9, consumer_seq=2))
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("ADDED", "pods.default.a", 5), ("ADDED", "pods.default.b", 9)]
    assert informer.synced.is_set()


def test_a_list_cut_short_is_listed_again_and_keys_it_no_longer_holds_are_deleted():
    informer: Informer[Pod] = Informer(None, bucket=BUCKET, decode=as_pod)  # type: ignore[arg-type]
    events: list[WatchEvent[Pod]] = []
    informer.add_handler(events.append)
    informer._receive(delivered("pods.default.a", pod("a"), stream_seq=1, consumer_seq=1, pending=2))
    informer._receive(delivered("pods.default.b", pod("b"), stream_seq=2, consumer_seq=2, pending=1))
    assert not informer.synced.is_set()  # the connection drops here; b is purged meanwhile
    informer._relisted, informer._consumer_seq = set(), 0  # what _subscribe does for a relist
    informer._receive(delivered("pods.default.a", pod("a"), stream_seq=1, consumer_seq=1, pending=1))
    informer._receive(delivered("pods.default.c", pod("c"), stream_seq=4, consumer_seq=2))
    assert informer.synced.is_set()
    assert [(e.type, e.key) for e in events] == [
        ("ADDED", "pods.default.a"), ("ADDED", "pods.default.b"), ("ADDED", "pods.default.c"),
        ("DELETED", "pods.default.b")]
    assert sorted(informer.cache) == ["pods.default.a", "pods.default.c"]


async def test_a_watch_from_a_resource_version_sees_only_later_changes_typed_by_the_writer(server):
    admin = await connect(server.creds["admin"], name="writer")
    js = jetstream(admin)

    async def write(key: str, data: bytes, op: str) -> int:
        headers = {"Peapod-Op": op, **({"KV-Operation": "DEL"} if op == "DELETED" else {})}
        return (await js.publish(f"$KV.{BUCKET}.{key}", data, headers=headers)).seq

    await write("pods.default.c", pod("c"), "ADDED")
    since = await write("pods.default.a", pod("a"), "ADDED")
    nc, informer = await reader(server, as_pod, resource_version=since, op_header="Peapod-Op")
    async with running(informer) as events:
        assert informer.synced.is_set()  # nothing to list
        await write("pods.default.a", pod("a", v="2"), "MODIFIED")
        await write("pods.default.b", pod("b"), "ADDED")
        await write("pods.default.c", pod("c", last="state"), "DELETED")  # the marker holds it
        await eventually(lambda: len(events) == 3)
        await asyncio.sleep(0.3)
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("MODIFIED", "pods.default.a", since + 1), ("ADDED", "pods.default.b", since + 2),
        ("DELETED", "pods.default.c", since + 3)]
    assert events[2].obj.metadata.labels == {"last": "state"}
    await nc.close()
    await admin.close()


async def test_wait_for_returns_once_the_cache_holds_a_write(server):
    """Read-your-writes: after ``wait_for(R)`` the cache holds the write at R, no polling."""
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    nc, informer = await reader(server, as_dict, keys="pods.>")
    async with running(informer):
        await asyncio.wait_for(informer.synced.wait(), 5)
        waiter = asyncio.create_task(informer.wait_for(informer.revision + 2, timeout=15))
        first = await kv.put("pods.default.a", b'{"n": 1}')
        await asyncio.sleep(0.1)
        assert not waiter.done()  # revision + 1 is not enough
        second = await kv.put("pods.default.b", b'{"n": 2}')
        assert await waiter is True
        assert informer.cache["pods.default.b"].revision == second
        assert await informer.wait_for(first, timeout=15) is True  # seen already
        other = await kv.put("nodes.n1", b'{"n": 3}')  # not one of its keys: never arrives
        assert await informer.wait_for(other, timeout=0.3) is False
        assert informer.revision == second
    await nc.close()
    await admin.close()


async def test_several_key_filters_share_one_consumer_and_one_order(server):
    admin = await connect(server.creds["admin"], name="writer")
    kv = await jetstream(admin).key_value(BUCKET)
    nc, informer = await reader(server, as_dict, keys=("nodes.>", "pods.>"))
    async with running(informer) as events:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await kv.put("nodes.n1", b'{"n": 1}')
        await kv.put("namespaces.default", b'{"n": 2}')  # not asked for
        await kv.put("pods.default.p", b'{"n": 3}')
        await kv.put("nodes.n2", b'{"n": 4}')
        await eventually(lambda: len(events) == 3)
        await asyncio.sleep(0.2)
    assert [(e.key, e.revision) for e in events] == [
        ("nodes.n1", 1), ("pods.default.p", 3), ("nodes.n2", 4)]
    await nc.close()
    await admin.close()


async def test_a_bucket_made_again_is_listed_again_not_resumed_at_the_old_revision(server):
    """A memory-backed bucket (the leases) is lost with its server and made again: its
    sequences start over. Resuming at the old revision used to see nothing until the new
    stream passed it (a minute of NotReady nodes in ``make chaos``)."""
    admin = await connect(server.creds["admin"], name="writer")
    js = jetstream(admin)
    kv = await js.key_value(BUCKET)
    for i in range(10):
        await kv.put("pods.default.a", pod("a", v=str(i)))
    await kv.put("pods.default.gone", pod("gone"))
    nc, informer = await reader(server, as_pod, check_every=0.2)
    with capture_logs() as logs:
        async with running(informer) as events:
            await asyncio.wait_for(informer.synced.wait(), 5)
            await js.delete_key_value(BUCKET)
            kv = await js.create_key_value(bucket=BUCKET, history=64)
            await kv.put("pods.default.a", pod("a", v="new"))
            await kv.put("pods.default.b", pod("b"))
            await eventually(lambda: len(events) >= 5)
            await asyncio.sleep(0.5)  # anything else would be a duplicate
    assert [(e.type, e.key) for e in events[:2]] == [
        ("ADDED", "pods.default.a"), ("ADDED", "pods.default.gone")]
    assert sorted((e.type, e.key) for e in events[2:]) == [  # the relist and the writes race
        ("ADDED", "pods.default.b"), ("DELETED", "pods.default.gone"),
        ("MODIFIED", "pods.default.a")]
    assert informer.cache["pods.default.a"].obj.metadata.labels == {"v": "new"}
    assert sorted(informer.cache) == ["pods.default.a", "pods.default.b"]
    assert informer.revision == 2
    assert [e["revision"] for e in logs if e["event"] == "watch_stream_recreated"] == [11]
    await nc.close()
    await admin.close()
