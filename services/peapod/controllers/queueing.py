"""What every controller of the manager shares: a work queue on the shared cache, and claiming.

A controller subclasses ``QueuedController``: it says which keys to look at
once the cache is synced (``initial_keys``) and how to reconcile one; the
queue is made only after the informer's list is complete, so no reconcile
ever counts on a half-listed cache (an event before that is not lost: the
initial keys cover every object). ``adopt_and_release`` writes the
ownership changes a claim decided (``claiming.claim_pods``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

from peapod.api import Pod
from peapod.bus import subjects as s
from peapod.bus.clock import Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Outcome, WorkQueue
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.claiming import Claim, controller_reference
from peapod.controllers.expectations import Expectations
from peapod.errors import PeapodError

log = structlog.get_logger("controllers")


class QueuedController:
    name = "controller"

    def __init__(self, *, cache: ControllerCache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self.queue: WorkQueue | None = None  # while ``run`` runs

    def initial_keys(self) -> Iterable[str]:
        raise NotImplementedError

    async def reconcile(self, key: str) -> Outcome:
        raise NotImplementedError

    def add(self, key: str) -> None:
        if self.queue is not None:
            self.queue.add(key)

    async def run(self) -> None:
        await self.cache.wait_synced()
        self.queue = WorkQueue(self.reconcile, name=self.name, clock=self.clock)
        for key in self.initial_keys():
            self.queue.add(key)
        try:
            await asyncio.Event().wait()
        finally:
            queue, self.queue = self.queue, None
            await queue.close()


class PodOwningController(QueuedController):
    """A controller whose objects own pods (ReplicaSet, DaemonSet): expectations, pod events
    mapped to their owner's key, and the deletion of one pod with its event."""

    owner_kind = ""  # "ReplicaSet"
    owner_resource = ""  # "replicasets"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock) -> None:
        super().__init__(cache=cache, clock=clock)
        self.api = api
        self.events = events
        self.expectations = Expectations(clock=clock)
        cache.on_event(self._on_event)

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        raise NotImplementedError

    def initial_keys(self) -> list[str]:
        return [self.owner_key(o.metadata.namespace, o.metadata.name)
                for o in self.cache.of_kind(self.owner_resource)]

    def owner_key(self, namespace: str | None, name: str | None) -> str:
        return s.kv_key(self.owner_resource, namespace or "default", name or "")

    def observe_pod(self, event: WatchEvent[Object]) -> str | None:
        """The key of the pod's owner (if of our kind), its expectations lowered by what the
        event shows: a pod that appeared, or one that went or is going."""
        pod = event.obj
        ref = pod.metadata.controller_ref()
        if ref is None or ref.kind != self.owner_kind:
            return None
        key = self.owner_key(pod.metadata.namespace, ref.name)
        if event.type == "ADDED":
            self.expectations.created(key)
        if event.type == "DELETED" or pod.metadata.deletion_timestamp:
            self.expectations.deleted(key, pod.metadata.uid or "")
        return key

    async def create_pods(self, owner: Any, key: str, pod: Pod, count: int, olog: Any
                          ) -> str | None:
        """Create ``count`` copies of ``pod`` (named by generateName) in doubling batches (1, 2,
        4 …, client-go's slow start); the first refusal stops it and is returned."""
        self.expectations.expect(key, adds=count)
        batch, done = 1, 0
        while done < count:
            size = min(batch, count - done)
            results = await asyncio.gather(*(self.api.create("pods", pod.to_wire())
                                             for _ in range(size)), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for created in results:
                if isinstance(created, dict):
                    olog.info("pod_created", pod=created["metadata"]["name"])
                    await self.events.record(owner.to_wire(), reason="SuccessfulCreate",
                                             message=f"Created pod: {created['metadata']['name']}")
            done += size
            if errors:
                for _ in range(count - done + len(errors)):
                    self.expectations.created(key)  # never coming: do not wait for them
                message = errors[0].message if isinstance(errors[0], PeapodError) else str(errors[0])
                olog.warning("pod_create_failed", error=message)
                await self.events.record(owner.to_wire(), reason="FailedCreate", type="Warning",
                                         message=f"Error creating: {message}")
                return message
            batch *= 2
        return None

    async def delete_pod(self, owner: Any, key: str, pod: Pod, olog: Any) -> None:
        name = pod.metadata.name or ""
        try:
            await self.api.delete("pods", pod.metadata.namespace or "default", name)
        except PeapodError as exc:
            self.expectations.deleted(key, pod.metadata.uid or "")  # it will not be seen going
            olog.warning("pod_delete_failed", pod=name, error=exc.message)
            return
        olog.info("pod_deleted", pod=name, node=pod.spec.node_name)
        await self.events.record(owner.to_wire(), reason="SuccessfulDelete",
                                 message=f"Deleted pod: {name}")


async def adopt_and_release(api: ApiClient, resource: str, owner: Any, claim: Claim[Any]) -> None:
    """Add the owner's controller reference to adopted objects, remove it from released ones."""
    meta = owner.metadata
    ref = controller_reference(owner.kind, meta.name or "", meta.uid or "")
    for obj in claim.adopt:
        updated = obj.model_copy(deep=True)
        updated.metadata.owner_references = [*(obj.metadata.owner_references or []), ref]
        await api.update(resource, updated.to_wire())
        log.info("adopted", kind=obj.kind, namespace=obj.metadata.namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid, owner=meta.name)
    for obj in claim.release:
        updated = obj.model_copy(deep=True)
        updated.metadata.owner_references = [
            r for r in obj.metadata.owner_references or [] if r.uid != meta.uid] or None
        await api.update(resource, updated.to_wire())
        log.info("released", kind=obj.kind, namespace=obj.metadata.namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid, owner=meta.name)
