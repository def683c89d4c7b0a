"""The fan-out loop: from the KV commit log to the watch stream and node partitions.

Every committed write is a message on the KV stream. This loop tails that
stream from a durable cursor (a JetStream pull consumer shared by all
apiserver replicas, with one message in flight, so changes go out in commit
order even with several replicas) and republishes each change:

* to the cluster watch stream ``peapod.watch.<kind>.<ns>.<name>``;
* for a pod bound to a node, to that node's own partition
  ``peapod.node.<node>.pods.<ns>.<name>`` (last value per subject), so a
  kubelet's list+watch is one consumer over its own pods only.

Each republish carries ``Nats-Msg-Id`` derived from the KV revision. If a
replica crashes after publishing but before acknowledging, the next one
republishes the same ids and JetStream drops the duplicates: nothing is lost,
nothing is doubled. The message is acknowledged only after both publishes.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from peapod.apiserver.store import KV_OP, OP_HEADER, with_revision
from peapod.bus import subjects as s

log = structlog.get_logger("apiserver.fanout")

EVENT_TYPE_HEADER = "Peapod-Event-Type"


def change_type(msg: Msg) -> str:
    headers = msg.headers or {}
    if headers.get(KV_OP) in ("DEL", "PURGE"):
        return "DELETED"
    return headers.get(OP_HEADER, "MODIFIED")


async def fan_out(js: JetStreamContext, msg: Msg) -> None:
    """Republish one committed change; idempotent by message id."""
    prefix = f"$KV.{s.KV_BUCKET}."
    key = msg.subject[len(prefix):]
    seq = msg.metadata.sequence.stream
    try:
        kind, namespace, name = s.parse_kv_key(key)  # names are single tokens: dots survive
    except ValueError:
        # a key written before names were encoded (``pods.default.web.v1``): Store.rekey_legacy
        # moves such objects to their encoded key, whose change is fanned out instead
        log.warning("change_with_legacy_key", key=key, revision=seq)
        return
    event_type = change_type(msg)
    if not msg.data:
        log.warning("change_without_body", key=key, revision=seq)
        return
    obj = with_revision(json.loads(msg.data), seq)
    body = json.dumps(obj, separators=(",", ":")).encode()
    headers = {EVENT_TYPE_HEADER: event_type}
    await js.publish(s.watch(kind, namespace, name), body,
                     headers={**headers, "Nats-Msg-Id": f"watch-{seq}"})
    node = (obj.get("spec") or {}).get("nodeName")
    if kind == "pods" and node and namespace:
        await js.publish(s.node_partition(node, namespace, name), body,
                         headers={**headers, "Nats-Msg-Id": f"node-{seq}"})
    log.debug("fanned_out", key=key, revision=seq, type=event_type, node=node)


async def run_fanout(js: JetStreamContext, *, stop: asyncio.Event) -> None:
    """Tail the KV stream from the durable cursor until ``stop`` is set."""
    config = ConsumerConfig(
        durable_name=s.FANOUT_DURABLE, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL, max_ack_pending=1, ack_wait=30,
        filter_subject=f"$KV.{s.KV_BUCKET}.>",
    )
    await js.add_consumer(s.KV_STREAM, config=config)
    sub = await js.pull_subscribe_bind(s.FANOUT_DURABLE, stream=s.KV_STREAM)
    log.info("fanout_started")
    try:
        while not stop.is_set():
            try:
                messages = await sub.fetch(batch=1, timeout=1)
            except TimeoutError:  # nats-py raises both its own and asyncio's
                continue
            for msg in messages:
                await fan_out(js, msg)
                await msg.ack()
    finally:
        # a fetch cancelled mid-flight leaves a message in the subscription's queue, and
        # draining the connection would wait on it for ever
        await sub.unsubscribe()
