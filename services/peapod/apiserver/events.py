"""Events are recorded through the apiserver, which checks who writes them.

Only the apiserver may publish on ``peapod.events.>``; components ask it to.
``peapod.api.v1.events.create`` is for cluster components (the scheduler,
controllers, the admin) and may be about any object.
``peapod.api.v1.node.<node>.events`` is a kubelet's: the NATS permissions let
only that node's kubelet send there, and this handler lets it record events
only about its own Node and the pods bound to it, which is Kubernetes'
NodeRestriction applied to events. Without it, one compromised node could
write sentences about every pod of the cluster.

A pod that was just deleted is still recognised: its deletion marker keeps
the pod's last state, and the bucket keeps a few revisions of each key, so a
kubelet reporting ``Killing`` for a pod deleted with ``--force`` (or for an
earlier incarnation of a recreated pod) is checked against the node that pod
was bound to.

Every Event is validated whole (field types, names, timestamps, sizes:
``peapod.bus.events.event_problems``) before anything is stored, and a
refused one changes nothing. Folding repeats (``count``, ``lastTimestamp``)
is the recorder's job, as it is client-go's correlator's: the copy with the
raised count comes under the same name, and readers keep the last copy of
each event of each object.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from peapod.api import Event
from peapod.api.static import CONFIG_MIRROR
from peapod.api.validation import pydantic_problems
from peapod.apiserver.store import Store
from peapod.bus import subjects as s
from peapod.bus.client import encode
from peapod.bus.events import event_problems
from peapod.bus.replay import read_all
from peapod.errors import Forbidden, Invalid, invalid

log = structlog.get_logger("apiserver.events")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]


def admit_event(payload: dict[str, Any]) -> Event:
    """The Event of a request, validated whole; Invalid names every problem."""
    doc = payload.get("object")
    if not isinstance(doc, dict):
        raise Invalid("request field 'object' must be a JSON object")
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    name = name if isinstance(name, str) else None
    try:
        event = Event.model_validate(doc)
    except ValidationError as exc:
        raise invalid("Event", name, pydantic_problems(exc)) from None
    if problems := event_problems(event):
        raise invalid("Event", name, problems)
    return event


class EventsApi:
    def __init__(self, store: Store) -> None:
        # the bucket's JetStream context: events go to their own stream on the same connection
        self._js = store._js

    def routes(self) -> dict[str, Route]:
        return {
            s.api("events", "create"): self.create_event,
            f"{s.API_PREFIX}.node.*.events": self.record_node_event,
        }

    async def create_event(self, payload: dict[str, Any], msg: Msg) -> Any:
        """An event from a cluster component: any object."""
        return await self._publish(admit_event(payload))

    async def record_node_event(self, payload: dict[str, Any], msg: Msg) -> Any:
        """An event from the kubelet of ``<node>``: its own Node and its own pods only."""
        node = s.node_of_api(msg.subject)
        event = admit_event(payload)
        try:
            self._check_source(node, event)
            await self._check_involved_object(node, event)
        except Forbidden as exc:
            ref = event.involved_object
            log.warning("event_refused", node=node, kind=ref.kind, namespace=ref.namespace,
                        name=ref.name, uid=ref.uid, reason=event.reason, error=exc.message)
            raise
        return await self._publish(event)

    @staticmethod
    def _forbidden(node: str, event: Event, why: str) -> Forbidden:
        return Forbidden(f'events "{event.metadata.name}" is forbidden: node "{node}" may only '
                         f"record events about itself and the pods bound to it: {why}")

    def _check_source(self, node: str, event: Event) -> None:
        hosts = {h for h in (event.source.host if event.source else None,
                             event.reporting_instance) if h}
        if hosts - {node}:
            raise self._forbidden(node, event, f"the event names host {sorted(hosts - {node})[0]!r} "
                                               "as its source")

    async def _check_involved_object(self, node: str, event: Event) -> None:
        ref = event.involved_object
        if ref.kind == "Node":
            if ref.name != node:
                raise self._forbidden(node, event, f'it is about node "{ref.name}"')
            return
        if ref.kind != "Pod":
            raise self._forbidden(node, event, f"it is about a {ref.kind}")
        namespace, name = event.metadata.namespace or "default", ref.name or ""
        bound_to = await self._pod_node(namespace, name, ref.uid)
        if bound_to != node:
            where = f'bound to node "{bound_to}"' if bound_to else "not bound to it"
            raise self._forbidden(node, event, f"pod {namespace}/{name} is {where}")

    async def _pod_node(self, namespace: str, name: str, uid: str | None) -> str | None:
        """The node the pod (with ``uid``, if given) is or was last bound to, or None."""
        subject = f"$KV.{s.KV_BUCKET}.{s.kv_key('pods', namespace, name)}"
        try:
            latest = await self._js.get_msg(s.KV_STREAM, subject=subject, direct=True)
        except NotFoundError:
            return None
        states = [_state(latest.data or b"")]
        if uid and uid not in _uids(states[0]):  # an earlier incarnation: read the revisions
            states = [_state(m.data) for m in await read_all(self._js, stream=s.KV_STREAM,
                                                                subject=subject)]
        for state in reversed(states):
            if not uid or uid in _uids(state):
                node = (state.get("spec") or {}).get("nodeName")
                return node if isinstance(node, str) else None
        return None

    async def _publish(self, event: Event) -> Any:
        ref = event.involved_object
        wire = event.to_wire()
        # each version of an event (name, count) is stored once: a kubelet that sends again
        # what it held across a restart (bus/spool.py) does not store it twice
        msg_id = f"{event.metadata.namespace}/{event.metadata.name}/{event.count}"
        await self._js.publish(s.event(event.metadata.namespace or "default", ref.kind or "",
                                       ref.name or ""), encode(wire),
                               headers={"Nats-Msg-Id": msg_id})
        log.debug("event_recorded", kind=ref.kind, namespace=event.metadata.namespace,
                  name=ref.name, uid=ref.uid, reason=event.reason, count=event.count)
        return wire


def _state(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _uids(state: dict[str, Any]) -> set[str]:
    """The pod's uid, and for a mirror pod the uid of the static pod it stands for (its
    kubelet records events about the static pod)."""
    meta = state.get("metadata") or {}
    uids = {meta.get("uid"), (meta.get("annotations") or {}).get(CONFIG_MIRROR)}
    return {uid for uid in uids if isinstance(uid, str)}
