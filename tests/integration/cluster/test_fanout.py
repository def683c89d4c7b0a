"""Replicas and the fan-out loop against a real nats-server.

Two apiserver replicas share the request queue group and the fan-out cursor;
a republish of an already fanned-out change is dropped by JetStream's
de-duplication, so a replica that crashed between publish and ack doubles
nothing.
"""

from __future__ import annotations

import asyncio
import json

from nats.js.api import DeliverPolicy

from peapod.apiserver.fanout import EVENT_TYPE_HEADER, fan_out
from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.replay import read_all


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


async def watch_messages(js, name: str) -> list:
    return await read_all(js, stream=s.WATCH_STREAM, subject=s.watch("pods", "default", name))


async def wait_for(predicate, timeout: float = 10):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_a_second_replica_keeps_serving_and_fanning_out_when_the_first_stops(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    stop_b = asyncio.Event()
    replica_b = asyncio.create_task(run_apiserver(apiserver["creds"]["apiserver"], stop=stop_b))
    try:
        names = [f"p{i}" for i in range(10)]
        await asyncio.gather(*(request(admin, s.api("pods", "create"), {"object": pod(n)})
                               for n in names))
        listed = await request(admin, s.api("pods", "list"), {"namespace": "default"})
        assert sorted(p["metadata"]["name"] for p in listed) == names
        # each change reaches the watch stream exactly once, whichever replica fanned it out
        for name in names:
            assert len(await wait_for(lambda n=name: watch_messages(js, n))) == 1
        # stop replica A (the fixture's); B alone answers and resumes the shared cursor
        apiserver["stop"].set()
        await asyncio.wait_for(apiserver["task"], 10)
        created = await request(admin, s.api("pods", "create"), {"object": pod("after")})
        msgs = await wait_for(lambda: watch_messages(js, "after"))
        assert [json.loads(m.data)["metadata"]["uid"] for m in msgs] == [created["metadata"]["uid"]]
    finally:
        stop_b.set()
        await asyncio.wait_for(replica_b, 10)


async def test_republishing_a_change_is_idempotent(apiserver):
    admin = apiserver["admin"]
    js = jetstream(admin)
    created = await request(admin, s.api("pods", "create"), {"object": pod("once")})
    await wait_for(lambda: watch_messages(js, "once"))
    # replay the committed change from the KV stream, as a replica that crashed before its
    # ack would, and fan it out again
    sub = await js.subscribe(f"$KV.{s.KV_BUCKET}.pods.default.once", stream=s.KV_STREAM,
                             ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    commit = await sub.next_msg(timeout=5)
    await sub.unsubscribe()
    await fan_out(js, commit)
    await fan_out(js, commit)
    msgs = await watch_messages(js, "once")
    assert len(msgs) == 1
    assert msgs[0].headers[EVENT_TYPE_HEADER] == "ADDED"
    assert json.loads(msgs[0].data)["metadata"]["resourceVersion"] == \
        created["metadata"]["resourceVersion"]
