"""The controller manager's view: one informer over pods, workloads and nodes.

One consumer lists and watches ``pods.>``, ``replicasets.>``,
``deployments.>``, ``daemonsets.>``, ``jobs.>``, ``cronjobs.>`` and ``nodes.>`` of the KV bucket, so
they arrive in the order they were written: a pod created by a ReplicaSet is never seen before that
ReplicaSet. Objects are kept by key and by uid (the garbage collector finds
owners by uid), and every change is handed to the controllers' handlers,
which only put keys on their work queues.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext

from peapod.api import Node, Pod
from peapod.api.apps import DaemonSet, Deployment, ReplicaSet
from peapod.api.batch import CronJob, Job
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.informer import Informer, WatchEvent

Object = Pod | ReplicaSet | Deployment | DaemonSet | Job | CronJob | Node
MODELS: dict[str, type[Object]] = {"pods": Pod, "replicasets": ReplicaSet,
                                   "deployments": Deployment, "daemonsets": DaemonSet,
                                   "jobs": Job, "cronjobs": CronJob, "nodes": Node}
RESOURCE_OF_KIND = {"Pod": "pods", "ReplicaSet": "replicasets", "Deployment": "deployments",
                    "DaemonSet": "daemonsets", "Job": "jobs",
                    "CronJob": "cronjobs"}  # the namespaced kinds (nodes are only read)


def decode_object(key: str, data: bytes) -> Object:
    """A pod, ReplicaSet or Deployment, by its key's first segment."""
    model = MODELS[key.split(".", 1)[0]]
    return model.model_validate(json.loads(data))


def key_of(obj: Object) -> str:
    meta = obj.metadata
    return s.kv_key(RESOURCE_OF_KIND[obj.kind], meta.namespace or "default", meta.name or "")


class ControllerCache:
    def __init__(self, js: JetStreamContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.objects: dict[str, Object] = {}
        self.by_uid: dict[str, Object] = {}
        self.informer: Informer[Object] = Informer(
            js, bucket=s.KV_BUCKET, keys=tuple(f"{r}.>" for r in MODELS), decode=decode_object,
            clock=clock)
        self.informer.add_handler(self._on_event)
        self._handlers: list[Callable[[WatchEvent[Object], Object | None], None]] = []

    def on_event(self, handler: Callable[[WatchEvent[Object], Object | None], None]) -> None:
        """``handler(event, previous)``: called after the cache took the change in."""
        self._handlers.append(handler)

    async def wait_synced(self) -> None:
        await self.informer.synced.wait()

    def get(self, key: str) -> Any:
        return self.objects.get(key)

    def of_kind(self, resource: str, namespace: str | None = None) -> list[Any]:
        prefix = s.kv_prefix(resource, namespace)
        return [obj for key, obj in self.objects.items() if key.startswith(prefix)]

    def _on_event(self, event: WatchEvent[Object]) -> None:
        previous = self.objects.get(event.key)
        if previous is not None and previous.metadata.uid:
            self.by_uid.pop(previous.metadata.uid, None)
        if event.type == "DELETED":
            self.objects.pop(event.key, None)
        else:
            # the store keeps the revision out of the value: a write back must name it
            event.obj.metadata.resource_version = str(event.revision)
            self.objects[event.key] = event.obj
            if event.obj.metadata.uid:
                self.by_uid[event.obj.metadata.uid] = event.obj
        for handler in self._handlers:
            handler(event, previous)
