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

from peapod.bus.clock import Clock
from peapod.bus.workqueue import Outcome, WorkQueue
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache
from peapod.controllers.claiming import Claim, controller_reference

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
