"""The CLI's view of the cluster: typed calls over the bus, nothing else.

Every command goes through here; the CLI never touches the KV bucket or a
node directly, except to read the event and watch streams, which the admin
user may read.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from peapod.api import Event, Node, Pod
from peapod.bus import subjects as s
from peapod.bus.client import connect, decode, encode, jetstream, request
from peapod.bus.events import latest_events
from peapod.bus.replay import read_all
from peapod.cli.context import Context
from peapod.errors import Invalid, NotFound, Unavailable, from_wire


class Client:
    def __init__(self, nc: NATS, *, namespace: str) -> None:
        self.nc = nc
        self.js = jetstream(nc)
        self.namespace = namespace

    @classmethod
    async def open(cls, context: Context, *, namespace: str | None = None) -> Client:
        nc = await connect(context.credentials(), name="peapod-cli", reconnect=False,
                           connect_timeout=3)
        return cls(nc, namespace=namespace or context.namespace)

    async def close(self) -> None:
        await self.nc.close()

    # -- pods ---------------------------------------------------------------------------

    async def apply(self, obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
        result = await request(self.nc, s.api("pods", "apply"),
                               {"object": obj, "namespace": self.namespace})
        return result["object"], result["action"]

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await request(self.nc, s.api("pods", "create"),  # type: ignore[no-any-return]
                             {"object": obj, "namespace": self.namespace})

    async def get_pod(self, name: str, namespace: str | None = None) -> Pod:
        return Pod.model_validate(await request(self.nc, s.api("pods", "get"), {
            "namespace": namespace or self.namespace, "name": name}))

    async def list_pods(self, *, all_namespaces: bool = False, selector: str | None = None,
                        field_selector: str | None = None) -> list[Pod]:
        items = await request(self.nc, s.api("pods", "list"), {
            "namespace": None if all_namespaces else self.namespace,
            "labelSelector": selector, "fieldSelector": field_selector})
        return [Pod.model_validate(item) for item in items]

    async def delete_pod(self, name: str, *, namespace: str | None = None,
                         grace: int | None = None) -> dict[str, Any]:
        return await request(self.nc, s.api("pods", "delete"), {  # type: ignore[no-any-return]
            "namespace": namespace or self.namespace, "name": name,
            "gracePeriodSeconds": grace})

    async def wait_deleted(self, name: str, uid: str, *, namespace: str | None = None,
                           timeout: float = 120) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                pod = await self.get_pod(name, namespace)
            except NotFound:
                return True
            if pod.metadata.uid != uid:
                return True
            await asyncio.sleep(0.25)
        return False

    # -- nodes --------------------------------------------------------------------------

    async def get_node(self, name: str) -> Node:
        return Node.model_validate(await request(self.nc, s.api("nodes", "get"), {"name": name}))

    async def list_nodes(self, *, selector: str | None = None) -> list[Node]:
        items = await request(self.nc, s.api("nodes", "list"), {"labelSelector": selector})
        return [Node.model_validate(item) for item in items]

    async def delete_node(self, name: str) -> dict[str, Any]:
        return await request(self.nc, s.api("nodes", "delete"),  # type: ignore[no-any-return]
                             {"name": name})

    # -- events -------------------------------------------------------------------------

    def _events_subject(self, *, all_namespaces: bool, kind: str | None = None,
                        name: str | None = None) -> str:
        if kind and name:
            return s.event(self.namespace, kind, name)
        return "peapod.events.>" if all_namespaces else f"peapod.events.{self.namespace}.>"

    async def list_events(self, *, all_namespaces: bool = False, kind: str | None = None,
                          name: str | None = None, namespace: str | None = None) -> list[Event]:
        if namespace:
            subject = s.event(namespace, kind or "Pod", name or "")
        else:
            subject = self._events_subject(all_namespaces=all_namespaces, kind=kind, name=name)
        msgs = await read_all(self.js, stream=s.EVENTS_STREAM, subject=subject)
        return latest_events(Event.model_validate(json.loads(m.data)) for m in msgs)

    async def follow_events(self, *, all_namespaces: bool = False) -> AsyncIterator[tuple[Event, bool]]:
        """Every stored event, then each new one; the flag is True once the backlog is read.

        One subscription from the start of the stream, so nothing recorded
        between reading the backlog and following is missed.
        """
        sub = await self.js.subscribe(self._events_subject(all_namespaces=all_namespaces),
                                      stream=s.EVENTS_STREAM, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL)
        try:
            async for msg in sub.messages:
                yield Event.model_validate(json.loads(msg.data)), msg.metadata.num_pending == 0
        finally:
            await sub.unsubscribe()

    async def watch(self, resource: str, *, all_namespaces: bool = False
                    ) -> AsyncIterator[tuple[str, Pod | Node]]:
        """Changes to pods or nodes from now on. Subscribed when called, not when first
        iterated, so a caller that subscribes and then lists misses nothing in between."""
        if resource == "nodes":
            subject = "peapod.watch.nodes.>"
        else:
            subject = "peapod.watch.pods.>" if all_namespaces else f"peapod.watch.pods.{self.namespace}.>"
        model = Node if resource == "nodes" else Pod
        sub = await self.js.subscribe(subject, stream=s.WATCH_STREAM, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.NEW)

        async def changes() -> AsyncIterator[tuple[str, Pod | Node]]:
            try:
                async for msg in sub.messages:
                    kind = (msg.headers or {}).get("Peapod-Event-Type", "MODIFIED")
                    yield kind, model.model_validate(json.loads(msg.data))
            finally:
                await sub.unsubscribe()

        return changes()

    # -- exec and logs, straight to the pod's kubelet -------------------------------------

    async def exec(self, pod: Pod, container: str | None, command: list[str],
                   *, timeout: float = 60) -> tuple[int, bytes, bytes]:
        result = await request(self.nc, s.kubelet(_node_of(pod), "exec"), {
            "namespace": pod.metadata.namespace, "name": pod.metadata.name,
            "container": container, "command": command}, timeout=timeout)
        return (int(result["exitCode"]), base64.b64decode(result["stdout"]),
                base64.b64decode(result["stderr"]))

    async def logs(self, pod: Pod, container: str | None, *, follow: bool, tail: int | None,
                   previous: bool) -> AsyncIterator[bytes]:
        subject = s.kubelet(_node_of(pod), "logs")
        payload = {"namespace": pod.metadata.namespace, "name": pod.metadata.name,
                   "container": container, "follow": follow, "tail": tail, "previous": previous}
        if not follow:
            result = await request(self.nc, subject, payload, timeout=30)
            yield base64.b64decode(result["data"])
            return
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        try:
            await self.nc.publish(subject, encode(payload), reply=inbox)
            timeout: float | None = 10  # for the first reply; then the stream may idle
            while True:
                try:
                    msg = await sub.next_msg(timeout=timeout)  # type: ignore[arg-type]
                except TimeoutError:
                    raise Unavailable(f"the kubelet of node {_node_of(pod)} did not answer") from None
                timeout = None
                if (msg.headers or {}).get("Status") == "503":  # no responders
                    raise Unavailable(f"the kubelet of node {_node_of(pod)} is not running")
                reply = decode(msg.data)
                if "error" in reply:
                    raise from_wire(reply["error"])
                result = reply["result"]
                if result.get("done"):
                    return
                yield base64.b64decode(result["data"])
        finally:
            await sub.unsubscribe()


def _node_of(pod: Pod) -> str:
    if not pod.spec.node_name:
        raise Invalid(f"pod {pod.metadata.name} is not yet scheduled to a node")
    return pod.spec.node_name
