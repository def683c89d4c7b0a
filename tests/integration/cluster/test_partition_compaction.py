"""Compaction of the node partitions, against a real nats-server and apiserver.

A deleted pod leaves a deletion marker on its node's partition. Markers the
node's kubelet has acknowledged are purged, so a kubelet start replays its
live pods only; a marker it has not seen yet stays, however many compactions
pass. The kubelet here is its consumer, made with the kubelet's own
credentials and configuration, as ``Kubelet.watch_partition`` makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from peapod.apiserver.fanout import EVENT_TYPE_HEADER, compact_partitions
from peapod.bus import subjects as s
from peapod.bus.auth import kubelet_consumer
from peapod.bus.client import connect, jetstream, request
from peapod.bus.replay import read_all


def pod(name: str, node: str = "node-a") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1"}]}}


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


async def partition(js, node_name: str = "node-a") -> dict[str, str]:
    """The last message of each pod on the node's partition: name -> ADDED/MODIFIED/DELETED."""
    msgs = await read_all(js, stream=s.NODES_STREAM, subject=s.node_partition_all(node_name),
                          last_per_subject=True)
    return {json.loads(m.data)["metadata"]["name"]: m.headers[EVENT_TYPE_HEADER] for m in msgs}


async def until_fanned_out(js, expected: dict[str, str], node_name: str = "node-a") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (got := await partition(js, node_name)) != expected:
        assert loop.time() < deadline, got
        await asyncio.sleep(0.05)


class KubeletConsumer:
    """The partition consumer of a kubelet (what a kubelet start replays, and what it acks)."""

    def __init__(self, nc, node_name: str) -> None:
        self.js, self.node = jetstream(nc), node_name
        self.sub = None

    async def start(self) -> int:
        stream, consumer = s.NODES_STREAM, kubelet_consumer(self.node)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, consumer)
        info = await self.js.add_consumer(stream, config=ConsumerConfig(
            name=consumer, filter_subject=s.node_partition_all(self.node),
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            inactive_threshold=300, max_ack_pending=1000))
        self.sub = await self.js.pull_subscribe_bind(consumer, stream=stream)
        return info.num_pending  # what this start replays

    async def receive_all(self) -> list[str]:
        seen = []
        while True:
            try:
                msgs = await self.sub.fetch(batch=64, timeout=0.5)
            except TimeoutError:
                return seen
            for msg in msgs:
                seen.append(f"{json.loads(msg.data)['metadata']['name']} "
                            f"{msg.headers[EVENT_TYPE_HEADER]}")
                await msg.ack()

    async def stop(self) -> None:
        await self.sub.unsubscribe()


async def delete(admin, name: str) -> None:
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": name,
                                                   "gracePeriodSeconds": 0})


async def test_markers_are_purged_once_the_kubelet_has_seen_them_never_before(apiserver):
    admin, creds = apiserver["admin"], apiserver["creds"]
    js = jetstream(admin)
    await request(admin, s.node_api("node-a", "register"), {"object": node("node-a")})
    names = [f"p{i}" for i in range(20)]
    for name in names:
        await request(admin, s.api("pods", "create"), {"object": pod(name)})
    for name in names[2:]:
        await delete(admin, name)
    expected = {"p0": "ADDED", "p1": "ADDED", **{n: "DELETED" for n in names[2:]}}
    await until_fanned_out(js, expected)

    # the kubelet has not seen them: nothing goes, however often compaction runs
    assert await compact_partitions(js) == 0
    assert await compact_partitions(js) == 0
    assert await partition(js) == expected

    kubelet_nc = await connect(creds["kubelet-node-a"], name="kubelet-node-a")
    kubelet = KubeletConsumer(kubelet_nc, "node-a")
    try:
        assert await kubelet.start() == 20  # today's start replays every marker
        assert len(await kubelet.receive_all()) == 20
        assert await compact_partitions(js) == 18
        assert await partition(js) == {"p0": "ADDED", "p1": "ADDED"}

        # a deletion the kubelet has not fetched yet stays until it has acknowledged it
        await delete(admin, "p1")
        await until_fanned_out(js, {"p0": "ADDED", "p1": "DELETED"})
        assert await compact_partitions(js) == 0
        assert await kubelet.receive_all() == ["p1 DELETED"]
        assert await compact_partitions(js) == 1

        # a pod recreated under a purged marker's name is an ordinary pod again
        await request(admin, s.api("pods", "create"), {"object": pod("p2")})
        await until_fanned_out(js, {"p0": "ADDED", "p2": "ADDED"})
        assert await compact_partitions(js) == 0
        await kubelet.stop()

        # the next kubelet start replays its live pods only
        restarted = KubeletConsumer(kubelet_nc, "node-a")
        assert await restarted.start() == 2
        assert sorted(await restarted.receive_all()) == ["p0 ADDED", "p2 ADDED"]
        await restarted.stop()
    finally:
        await kubelet_nc.close()


async def test_markers_of_a_node_that_is_gone_are_purged(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    await request(admin, s.node_api("node-b", "register"), {"object": node("node-b")})
    await request(admin, s.api("pods", "create"), {"object": pod("old", "node-b")})
    await delete(admin, "old")
    await until_fanned_out(js, {"old": "DELETED"}, "node-b")
    assert await compact_partitions(js) == 0  # the node exists: its kubelet may come back
    await request(admin, s.api("nodes", "delete"), {"name": "node-b"})
    assert await compact_partitions(js) == 1  # no Node and no consumer: nobody will read it
    assert await partition(js, "node-b") == {}
