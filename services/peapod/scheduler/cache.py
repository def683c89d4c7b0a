"""The scheduler's view of the cluster: informers on pods, nodes and heartbeat leases.

Two informers (``bus/informer.py``) list and watch ``pods.>`` and
``nodes.>`` of the KV bucket; their events keep two dicts, pods and nodes,
that every decision reads. A stale cache can at worst produce a bind that
loses its compare-and-set, which the scheduler treats as "look again".
Decisions wait until both lists are complete (``wait_synced``): a node
whose pods were not listed yet would look free. Every change, and a node
whose lease comes (back) to life, calls the ``on_change`` callbacks, so the
scheduler runs when something happened instead of polling the store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext

from peapod.api import Node, Pod
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.informer import Informer, WatchEvent
from peapod.bus.leases import Leases


def decode_pod(key: str, data: bytes) -> Pod:
    return Pod.model_validate(json.loads(data))


def decode_node(key: str, data: bytes) -> Node:
    return Node.model_validate(json.loads(data))


class ClusterCache:
    def __init__(self, js: JetStreamContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.js = js
        self.pods: dict[str, Pod] = {}
        self.nodes: dict[str, Node] = {}
        self.leases = Leases()
        self.pod_informer = Informer(js, bucket=s.KV_BUCKET, keys="pods.>", decode=decode_pod,
                                     clock=clock)
        self.node_informer = Informer(js, bucket=s.KV_BUCKET, keys="nodes.>",
                                      decode=decode_node, clock=clock)
        self.pod_informer.add_handler(self._on_pod)
        self.node_informer.add_handler(self._on_node)
        self._callbacks: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def wait_synced(self) -> None:
        await asyncio.gather(self.pod_informer.synced.wait(), self.node_informer.synced.wait())

    def live_nodes(self, now: float) -> set[str]:
        """Nodes whose heartbeat lease has not expired."""
        return self.leases.live(now)

    async def watch_leases(self) -> None:
        await self.leases.watch(self.js, on_alive=self._changed)

    def _on_pod(self, event: WatchEvent[Pod]) -> None:
        self._keep(self.pods, event)

    def _on_node(self, event: WatchEvent[Node]) -> None:
        self._keep(self.nodes, event)

    def _keep(self, target: dict[str, Any], event: WatchEvent[Any]) -> None:
        if event.type == "DELETED":
            target.pop(event.key, None)
        else:
            target[event.key] = event.obj
        self._changed()

    def _changed(self) -> None:
        for callback in self._callbacks:
            callback()
