"""Attacks with each identity's own credentials, against the permissions ``peapod up`` writes.

The nats-server is configured by the same code as ``peapod up`` (and the
fleet's ``nats`` role): ``write_cluster_config``, two nodes. Each attack
runs with the real credentials of a kubelet (node-a) or of the scheduler on
a connection of its own, and must fail in two ways at once: the server
says ``Permissions Violation`` for that subject (so the failure is the
permission, not a slow server), and what it aimed at is unchanged (the KV
bucket, the node's partition, the apiserver's consumers, the other
kubelet's requests, another component's leader-election lease). Events
written about other nodes' pods have their own
tests (``test_event_writers.py``); a kubelet's requests about another node's
pod on its own subject are refused ``Forbidden`` in ``test_bad_input.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from peapod.bus import subjects as s
from peapod.bus.auth import kubelet_consumer
from peapod.bus.client import connect, jetstream, request
from peapod.bus.identity import Credentials
from peapod.bus.replay import read_all


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}], "nodeName": node}}


def collect(into: list[Any]) -> Callable[[Any], Awaitable[None]]:
    async def callback(msg: Any) -> None:
        into.append(msg)
    return callback


@dataclass
class Attacker:
    """A connection with someone's credentials that records the server's refusals."""

    nc: Any
    refusals: list[str]

    def refused(self, subject: str) -> bool:
        return any("permissions violation" in r.lower() and subject.lower() in r.lower()
                   for r in self.refusals)  # nats-py lower-cases the server's -ERR


async def attacker(creds: Credentials) -> Attacker:
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    nc = await nats.connect(creds.servers, nkeys_seed_str=creds.seed, name="attacker",
                            inbox_prefix=s.inbox_prefix(creds.user), error_cb=on_error,
                            allow_reconnect=False)
    return Attacker(nc, refusals)


async def kv_state(js) -> dict[str, int]:
    msgs = await read_all(js, stream=s.KV_STREAM, subject=f"$KV.{s.KV_BUCKET}.>",
                          last_per_subject=True)
    return {m.subject: m.metadata.sequence.stream for m in msgs}


async def consumers(js, stream: str) -> dict[str, Any]:
    return {info.name: info.config for info in await js.consumers_info(stream)}


@pytest.fixture
async def world(apiserver) -> AsyncIterator[dict]:
    """node-a's and node-b's pods, node-b's kubelet consumer and exec responder (played by the
    admin), and attackers with node-a's and the scheduler's credentials."""
    admin, creds = apiserver["admin"], apiserver["creds"]
    js = jetstream(admin)
    for name, node in (("mine", "node-a"), ("theirs", "node-b")):
        await request(admin, s.api("pods", "create"), {"object": pod(name, node)})
    for _ in range(50):  # fanned out to the partitions
        if len(await read_all(js, stream=s.NODES_STREAM, subject="peapod.node.>")) == 2:
            break
        await asyncio.sleep(0.1)
    node_b = await connect(creds["kubelet-node-b"], name="node-b")
    await jetstream(node_b).add_consumer(s.NODES_STREAM, config=ConsumerConfig(
        name=kubelet_consumer("node-b"), filter_subject=s.node_partition_all("node-b"),
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        inactive_threshold=300))
    answered: list[str] = []

    async def exec_b(msg) -> None:  # node-b's kubelet answering its own exec requests
        answered.append("node-b")
        await msg.respond(json.dumps({"result": {"exitCode": 0, "stdout": "", "stderr": ""}})
                          .encode())

    await node_b.subscribe(s.kubelet("node-b", "exec"), cb=exec_b)
    attackers = {"node-a": await attacker(creds["kubelet-node-a"]),
                 "scheduler": await attacker(creds["scheduler"]),
                 "controller-manager": await attacker(creds["controller-manager"])}
    try:
        yield {**apiserver, "js": js, "attackers": attackers, "answered": answered}
    finally:
        for a in attackers.values():
            with contextlib.suppress(Exception):
                await a.nc.close()
        await node_b.close()


async def attempt(call: Awaitable[Any]) -> Any:
    """Run an attack; what it returned, or the exception it raised."""
    try:
        return await asyncio.wait_for(call, 3)
    except Exception as exc:
        return exc


async def settle(a: Attacker, subject: str) -> None:
    for _ in range(30):  # the server's -ERR arrives asynchronously
        if a.refused(subject):
            return
        await asyncio.sleep(0.1)


Attack = Callable[[dict, Attacker], Awaitable[str]]


async def read_another_nodes_partition(w: dict, a: Attacker) -> str:
    js = a.nc.jetstream(timeout=2)
    subject = f"$JS.API.CONSUMER.CREATE.{s.NODES_STREAM}.{kubelet_consumer('node-a')}." \
              f"{s.node_partition_all('node-b')}"
    result = await attempt(js.add_consumer(s.NODES_STREAM, config=ConsumerConfig(
        name=kubelet_consumer("node-a"), filter_subject=s.node_partition_all("node-b"),
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)))
    assert isinstance(result, Exception), result
    return subject


async def take_another_nodes_consumer(w: dict, a: Attacker) -> str:
    js = a.nc.jetstream(timeout=2)
    before = await consumers(w["js"], s.NODES_STREAM)
    result = await attempt(js.pull_subscribe_bind(kubelet_consumer("node-b"),
                                                  stream=s.NODES_STREAM))
    if not isinstance(result, Exception):
        result = await attempt(result.fetch(1, timeout=1))
    assert isinstance(result, Exception), result
    assert await consumers(w["js"], s.NODES_STREAM) == before
    return f"$JS.API.CONSUMER.MSG.NEXT.{s.NODES_STREAM}.{kubelet_consumer('node-b')}"


async def delete_another_nodes_consumer(w: dict, a: Attacker) -> str:
    result = await attempt(a.nc.jetstream(timeout=2).delete_consumer(
        s.NODES_STREAM, kubelet_consumer("node-b")))
    assert isinstance(result, Exception), result
    assert kubelet_consumer("node-b") in await consumers(w["js"], s.NODES_STREAM)
    return f"$JS.API.CONSUMER.DELETE.{s.NODES_STREAM}.{kubelet_consumer('node-b')}"


async def subscribe_to_another_nodes_partition(w: dict, a: Attacker) -> str:
    got: list[Any] = []
    subject = s.node_partition_all("node-b")
    await a.nc.subscribe(subject, cb=collect(got))
    await a.nc.flush()
    await request(w["admin"], s.api("pods", "create"), {"object": pod("theirs-2", "node-b")})
    await asyncio.sleep(0.5)
    assert got == []
    return subject


async def read_the_store(w: dict, a: Attacker) -> str:
    subject = f"$JS.API.DIRECT.GET.{s.KV_STREAM}.$KV.{s.KV_BUCKET}." + \
        s.kv_key("pods", "default", "theirs")
    result = await attempt(a.nc.jetstream(timeout=2).get_msg(
        s.KV_STREAM, subject=f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'default', 'theirs')}",
        direct=True))
    assert isinstance(result, Exception), result
    return subject


async def get_a_pod_through_the_api(w: dict, a: Attacker) -> str:
    result = await attempt(a.nc.request(s.api("pods", "get"), json.dumps(
        {"namespace": "default", "name": "theirs"}).encode(), timeout=2))
    assert isinstance(result, Exception), result
    return s.api("pods", "get")


async def watch_pods(w: dict, a: Attacker) -> str:
    got: list[Any] = []
    await a.nc.subscribe("peapod.watch.>", cb=collect(got))
    result = await attempt(a.nc.jetstream(timeout=2).subscribe(
        s.watch_all("pods"), stream=s.WATCH_STREAM, ordered_consumer=True))
    assert isinstance(result, Exception), result
    await request(w["admin"], s.api("pods", "create"), {"object": pod("theirs-3", "node-b")})
    await asyncio.sleep(0.5)
    assert got == []
    return "peapod.watch.>"


async def post_status_as_another_node(w: dict, a: Attacker) -> str:
    before = await kv_state(w["js"])
    subject = s.node_api("node-b", "status")
    result = await attempt(a.nc.request(subject, json.dumps(
        {"namespace": "default", "name": "theirs", "status": {"phase": "Failed"}}).encode(),
        timeout=2))
    assert isinstance(result, Exception), result
    assert await kv_state(w["js"]) == before
    return subject


async def record_an_event_as_another_node(w: dict, a: Attacker) -> str:
    subject = s.node_api("node-b", "events")
    result = await attempt(a.nc.request(subject, b'{"object": {}}', timeout=2))
    assert isinstance(result, Exception), result
    return subject


async def answer_another_nodes_exec(w: dict, a: Attacker) -> str:
    stolen: list[Any] = []
    subject = s.kubelet("node-b", "exec")
    await a.nc.subscribe(subject, queue="", cb=collect(stolen))
    await a.nc.flush()
    await request(w["admin"], subject, {"namespace": "default", "name": "theirs",
                                        "command": ["id"]})
    assert stolen == [] and w["answered"] == ["node-b"]
    return subject


async def answer_another_nodes_logs(w: dict, a: Attacker, verb: str = "logs") -> str:
    stolen: list[Any] = []
    subject = s.kubelet("node-b", verb)
    await a.nc.subscribe(subject, cb=collect(stolen))
    await a.nc.flush()
    await w["admin"].publish(subject, b'{"name": "theirs"}', reply="_INBOX_admin.x")
    await asyncio.sleep(0.5)
    assert stolen == []
    return subject


async def read_another_nodes_session_input(w: dict, a: Attacker) -> str:
    """The keys a user types into a shell on node-b (``exec -it``/``attach``)."""
    stolen: list[Any] = []
    subject = s.kubelet_input("node-b", "0" * 32)
    await a.nc.subscribe("peapod.kubelet.node-b.input.*", cb=collect(stolen))
    await a.nc.flush()
    await w["admin"].publish(subject, b'{"data": "c2VjcmV0Cg=="}')
    await asyncio.sleep(0.5)
    assert stolen == []
    return "peapod.kubelet.node-b.input.*"


async def answer_another_nodes_attach(w: dict, a: Attacker) -> str:
    return await answer_another_nodes_logs(w, a, "attach")


async def write_the_store(w: dict, a: Attacker) -> str:
    before = await kv_state(w["js"])
    subject = f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', 'default', 'planted')}"
    result = await attempt(a.nc.jetstream(timeout=2).publish(
        subject, json.dumps(pod("planted", "node-a")).encode()))
    assert isinstance(result, Exception), result
    assert await kv_state(w["js"]) == before
    return subject


async def create_a_pod(w: dict, a: Attacker) -> str:
    before = await kv_state(w["js"])
    result = await attempt(a.nc.request(s.api("pods", "create"), json.dumps(
        {"object": pod("planted", "node-a")}).encode(), timeout=2))
    assert isinstance(result, Exception), result
    assert await kv_state(w["js"]) == before
    return s.api("pods", "create")


async def publish_on_another_nodes_partition(w: dict, a: Attacker) -> str:
    subject = s.node_partition("node-b", "default", "planted")
    result = await attempt(a.nc.jetstream(timeout=2).publish(
        subject, json.dumps(pod("planted", "node-b")).encode()))
    assert isinstance(result, Exception), result
    assert not [m for m in await read_all(w["js"], stream=s.NODES_STREAM, subject="peapod.node.>")
                if "planted" in m.subject]
    return subject


async def renew_another_nodes_lease(w: dict, a: Attacker) -> str:
    subject = s.lease("node-b")
    result = await attempt(a.nc.jetstream(timeout=2).publish(subject, b"{}"))
    assert isinstance(result, Exception), result
    return subject


async def take_a_leader_lease(w: dict, a: Attacker, component: str) -> str:
    """Write another component's leader-election lease (bus/election.py): refused, unchanged."""
    subject = s.leader_lease(component)
    before = [m.metadata.sequence.stream for m in await read_all(
        w["js"], stream=s.LEASE_STREAM, subject=subject)]
    result = await attempt(a.nc.jetstream(timeout=2).publish(
        subject, json.dumps({"holderIdentity": "attacker", "leaseDurationSeconds": 3600})
        .encode()))
    assert isinstance(result, Exception), result
    assert [m.metadata.sequence.stream for m in await read_all(
        w["js"], stream=s.LEASE_STREAM, subject=subject)] == before
    return subject


async def take_the_controller_managers_lease(w: dict, a: Attacker) -> str:
    return await take_a_leader_lease(w, a, "controller-manager")


async def take_the_schedulers_lease(w: dict, a: Attacker) -> str:
    return await take_a_leader_lease(w, a, "scheduler")


async def delete_the_fanout_consumer(w: dict, a: Attacker) -> str:
    before = await consumers(w["js"], s.KV_STREAM)
    result = await attempt(a.nc.jetstream(timeout=2).delete_consumer(s.KV_STREAM,
                                                                      s.FANOUT_DURABLE))
    assert isinstance(result, Exception), result
    assert s.FANOUT_DURABLE in await consumers(w["js"], s.KV_STREAM)
    assert (await consumers(w["js"], s.KV_STREAM))[s.FANOUT_DURABLE] == before[s.FANOUT_DURABLE]
    return f"$JS.API.CONSUMER.DELETE.{s.KV_STREAM}.{s.FANOUT_DURABLE}"


async def replace_the_fanout_consumer(w: dict, a: Attacker) -> str:
    before = await consumers(w["js"], s.KV_STREAM)
    result = await attempt(a.nc.jetstream(timeout=2).add_consumer(s.KV_STREAM, config=ConsumerConfig(
        durable_name=s.FANOUT_DURABLE, ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.NEW, filter_subject=f"$KV.{s.KV_BUCKET}.nothing")))
    assert isinstance(result, Exception), result
    assert (await consumers(w["js"], s.KV_STREAM))[s.FANOUT_DURABLE] == before[s.FANOUT_DURABLE]
    return f"$JS.API.CONSUMER.DURABLE.CREATE.{s.KV_STREAM}.{s.FANOUT_DURABLE}"


async def update_the_fanout_consumer_by_name(w: dict, a: Attacker) -> str:
    """JetStream's newer create call names the consumer and its filter in the subject: an
    existing consumer of that name is updated (here: to follow nothing)."""
    before = await consumers(w["js"], s.KV_STREAM)
    nothing = f"$KV.{s.KV_BUCKET}.nothing"
    result = await attempt(a.nc.jetstream(timeout=2).add_consumer(s.KV_STREAM, config=ConsumerConfig(
        name=s.FANOUT_DURABLE, durable_name=s.FANOUT_DURABLE, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL, max_ack_pending=1, ack_wait=30, filter_subject=nothing)))
    assert isinstance(result, Exception), result
    assert (await consumers(w["js"], s.KV_STREAM))[s.FANOUT_DURABLE] == before[s.FANOUT_DURABLE]
    return f"$JS.API.CONSUMER.CREATE.{s.KV_STREAM}.{s.FANOUT_DURABLE}.{nothing}"


async def purge_a_stream(w: dict, a: Attacker) -> str:
    result = await attempt(a.nc.jetstream(timeout=2).purge_stream(s.NODES_STREAM))
    assert isinstance(result, Exception), result
    assert len(await read_all(w["js"], stream=s.NODES_STREAM, subject="peapod.node.>")) >= 2
    return f"$JS.API.STREAM.PURGE.{s.NODES_STREAM}"


ATTACKS: list[tuple[str, Attack]] = [
    ("node-a", read_another_nodes_partition),
    ("node-a", take_another_nodes_consumer),
    ("node-a", delete_another_nodes_consumer),
    ("node-a", subscribe_to_another_nodes_partition),
    ("node-a", read_the_store),
    ("node-a", get_a_pod_through_the_api),
    ("node-a", watch_pods),
    ("node-a", post_status_as_another_node),
    ("node-a", record_an_event_as_another_node),
    ("node-a", answer_another_nodes_exec),
    ("node-a", answer_another_nodes_logs),
    ("node-a", answer_another_nodes_attach),
    ("node-a", read_another_nodes_session_input),
    ("node-a", write_the_store),
    ("node-a", create_a_pod),
    ("node-a", publish_on_another_nodes_partition),
    ("node-a", renew_another_nodes_lease),
    ("node-a", take_the_schedulers_lease),
    ("scheduler", take_the_controller_managers_lease),
    ("scheduler", renew_another_nodes_lease),
    ("controller-manager", take_the_schedulers_lease),
    ("scheduler", delete_the_fanout_consumer),
    ("scheduler", replace_the_fanout_consumer),
    ("scheduler", update_the_fanout_consumer_by_name),
    ("scheduler", delete_another_nodes_consumer),
    ("scheduler", write_the_store),
    ("scheduler", create_a_pod),
    ("scheduler", purge_a_stream),
]


@pytest.mark.parametrize(("who", "attack"), ATTACKS,
                         ids=[f"{who}-{attack.__name__}" for who, attack in ATTACKS])
async def test_an_identity_cannot_do_what_it_is_not_for(world, who: str, attack: Attack):
    a = world["attackers"][who]
    subject = await attack(world, a)
    await settle(a, subject)
    assert a.refused(subject), (subject, a.refusals)
