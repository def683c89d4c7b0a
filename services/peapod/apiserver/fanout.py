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

**Compaction.** A deleted pod leaves a deletion marker as the last message
of its partition subject, and each kubelet start replays every last message:
without compaction, every pod ever deleted on the node. A marker is needed
only until the node's kubelet has seen it: a running kubelet learns of the
deletion from it, and a restarted one removes podman pods that no pod of its
partition owns anyway. So ``compact_partitions`` (at start and every five
minutes) purges a marker once the kubelet's consumer has acknowledged it
(its ack floor is at or past the marker), or once neither that consumer nor
the Node exists any more. The purge is bounded by the marker's sequence, so
a pod recreated under the same name meanwhile is never touched, and a marker
the kubelet has not acknowledged stays, however old.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from peapod.apiserver.store import KV_OP, OP_HEADER, Store, decode_stored, with_revision
from peapod.bus import subjects as s
from peapod.bus.auth import kubelet_consumer
from peapod.bus.replay import read_all
from peapod.errors import Invalid, NotFound

log = structlog.get_logger("apiserver.fanout")

EVENT_TYPE_HEADER = "Peapod-Event-Type"
COMPACT_EVERY = 300.0  # seconds between compactions of the node partitions


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
    try:
        obj = with_revision(decode_stored(key, msg.data), seq)
    except Invalid as exc:  # written by hand or half-written: readers never see it
        log.warning("change_value_skipped", key=key, revision=seq, reason=exc.message)
        return
    body = json.dumps(obj, separators=(",", ":")).encode()
    headers = {EVENT_TYPE_HEADER: event_type}
    await js.publish(s.watch(kind, namespace, name), body,
                     headers={**headers, "Nats-Msg-Id": s.watch_msg_id(seq)})
    node = (obj.get("spec") or {}).get("nodeName")
    if kind == "pods" and node and namespace:
        await js.publish(s.node_partition(node, namespace, name), body,
                         headers={**headers, "Nats-Msg-Id": f"node-{seq}"})
    log.debug("fanned_out", key=key, revision=seq, type=event_type, node=node)


async def _seen_up_to(js: JetStreamContext, node: str) -> float | None:
    """The stream sequence up to which ``node``'s kubelet has acknowledged its partition;
    infinity for a node that is gone (no consumer, no Node); None if nothing is known."""
    try:
        info = await js.consumer_info(s.NODES_STREAM, kubelet_consumer(node))
    except NotFoundError:
        try:
            await Store(js).get(s.kv_key("nodes", None, node), what=f'nodes "{node}"')
        except NotFound:
            return float("inf")
        return None  # the kubelet is away: it will want its markers when it comes back
    return info.ack_floor.stream_seq if info.ack_floor else None


async def compact_partitions(js: JetStreamContext) -> int:
    """Purge every deletion marker its node's kubelet no longer needs; how many were."""
    markers: dict[str, list[tuple[str, int]]] = {}
    for msg in await read_all(js, stream=s.NODES_STREAM, subject="peapod.node.>",
                              last_per_subject=True):
        if (msg.headers or {}).get(EVENT_TYPE_HEADER) == "DELETED":
            node_token = msg.subject.split(".")[2]
            markers.setdefault(node_token, []).append((msg.subject,
                                                       msg.metadata.sequence.stream))
    purged = 0
    for node_token, found in markers.items():
        try:
            node = s.name_of(node_token)
        except ValueError:  # a subject written before names were encoded: not a node's now
            log.warning("partition_subject_not_a_node", token=node_token, markers=len(found))
            continue
        seen = await _seen_up_to(js, node)
        done = [(subject, seq) for subject, seq in found if seen is not None and seq <= seen]
        for subject, seq in done:
            # bounded by the marker's sequence: a newer message on the subject stays
            await js.purge_stream(s.NODES_STREAM, subject=subject, seq=seq + 1)
        purged += len(done)
        (log.info if done else log.debug)("partition_compacted", node=node, purged=len(done),
                                          kept=len(found) - len(done))
    return purged


async def _compact_logged(js: JetStreamContext) -> None:
    try:
        await compact_partitions(js)
    except Exception:  # compaction saves space; it must never stop the fan-out
        log.exception("partition_compaction_failed")


async def run_fanout(js: JetStreamContext, *, stop: asyncio.Event,
                     compact_every: float = COMPACT_EVERY) -> None:
    """Tail the KV stream from the durable cursor until ``stop`` is set."""
    config = ConsumerConfig(
        durable_name=s.FANOUT_DURABLE, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL, max_ack_pending=1, ack_wait=30,
        filter_subject=f"$KV.{s.KV_BUCKET}.>",
    )
    await js.add_consumer(s.KV_STREAM, config=config)
    sub = await js.pull_subscribe_bind(s.FANOUT_DURABLE, stream=s.KV_STREAM)
    log.info("fanout_started")
    loop = asyncio.get_running_loop()
    next_compaction = loop.time()
    try:
        while not stop.is_set():
            if loop.time() >= next_compaction:
                await _compact_logged(js)
                next_compaction = loop.time() + compact_every
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
