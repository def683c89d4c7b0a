"""The scheduler's view of the cluster: informers on pods, nodes and heartbeat leases.

One informer (``bus/informer.py``) lists and watches ``pods.>``,
``nodes.>``, ``persistentvolumes.>`` and ``persistentvolumeclaims.>`` of the
KV bucket through one consumer, so pods and nodes arrive
in the order they were written (a pod created after a node registered is
never seen before that node); its events keep two dicts, pods and nodes,
that every decision reads. A stale cache can at worst produce a bind that
loses its compare-and-set, which the scheduler treats as "look again".
Decisions wait until the list is complete (``wait_synced``): a node
whose pods were not listed yet would look free. Every change, and a node
whose lease comes (back) to life, calls the ``on_change`` callbacks, so the
scheduler runs when something happened instead of polling the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext

from peapod.api import Node, Pod
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.informer import Informer, WatchEvent
from peapod.bus.leases import Leases
from peapod.scheduler.volumes import VolumeView

Cached = Pod | Node | PersistentVolume | PersistentVolumeClaim
MODELS: dict[str, type[Cached]] = {"pods": Pod, "nodes": Node,
                                   "persistentvolumes": PersistentVolume,
                                   "persistentvolumeclaims": PersistentVolumeClaim}


def decode_object(key: str, data: bytes) -> Cached:
    """A pod, node, volume or claim, by its key's first segment (the informer's filters allow
    no other)."""
    return MODELS[key.split(".", 1)[0]].model_validate(json.loads(data))


class ClusterCache:
    def __init__(self, js: JetStreamContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.js = js
        self.pods: dict[str, Pod] = {}
        self.nodes: dict[str, Node] = {}
        self.volumes = VolumeView()
        self.leases = Leases()
        self.informer: Informer[Cached] = Informer(
            js, bucket=s.KV_BUCKET, keys=tuple(f"{r}.>" for r in MODELS), decode=decode_object,
            clock=clock)
        self.informer.add_handler(self._on_object)
        self._callbacks: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def wait_synced(self) -> None:
        await self.informer.synced.wait()

    def live_nodes(self, now: float) -> set[str]:
        """Nodes whose heartbeat lease has not expired."""
        return self.leases.live(now)

    async def watch_leases(self) -> None:
        await self.leases.watch(self.js, on_alive=self._changed)

    def _on_object(self, event: WatchEvent[Cached]) -> None:
        obj = event.obj
        target: dict[str, Any] = (
            self.pods if isinstance(obj, Pod) else self.nodes if isinstance(obj, Node)
            else self.volumes.volumes if isinstance(obj, PersistentVolume)
            else self.volumes.claims)
        if event.type == "DELETED":
            target.pop(event.key, None)
        else:
            target[event.key] = event.obj
        self._changed()

    def _changed(self) -> None:
        for callback in self._callbacks:
            callback()
