"""The garbage collector: owner references decide what goes when an owner goes.

Kubernetes' rules, on the one shared cache:

* **background** (the default): an object whose owners are all gone is
  deleted. "Gone" is checked twice: absent from the cache, and then absent
  from the apiserver (a live ``get`` by name whose uid must match), so a
  lagging cache never deletes a live object's dependents. An object with
  some owners left only loses the references to the missing ones;
* **foreground**: an owner with ``deletionTimestamp`` and the finalizer
  ``foregroundDeletion`` has its dependents deleted; once none that has
  ``blockOwnerDeletion`` is left, the finalizer is removed, and with it
  (the apiserver's rule) the owner;
* **orphan**: an owner with the finalizer ``orphan`` has its reference
  removed from each dependent, then the finalizer.

The queue holds object keys. An object is queued when it changes (it may
name owners, or be an owner being deleted with a finalizer); when an object
goes away, its dependents are queued (their owner may be gone) and so are
its owners (a foreground owner may be waiting for it).
"""

from __future__ import annotations

import structlog

from peapod.api.meta import FOREGROUND_DELETION, ORPHAN, OwnerReference
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import RESOURCE_OF_KIND, ControllerCache, Object, key_of
from peapod.controllers.queueing import QueuedController
from peapod.errors import Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.garbagecollector")

RETRY_SECONDS = 1.0


class GarbageCollector(QueuedController):
    name = "garbagecollector"

    def __init__(self, *, cache: ControllerCache, api: ApiClient,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(cache=cache, clock=clock)
        self.api = api
        cache.on_event(self._on_event)

    def initial_keys(self) -> list[str]:
        return [key for key, obj in self.cache.objects.items()
                if obj.metadata.owner_references or obj.metadata.finalizers]

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if event.type != "DELETED" and (obj.metadata.owner_references or obj.metadata.finalizers):
            self.add(event.key)
        if event.type == "DELETED":
            for key in self._dependents_keys(obj.metadata.uid or ""):
                self.add(key)
            for ref in obj.metadata.owner_references or []:
                owner = self.cache.by_uid.get(ref.uid)
                if owner is not None:
                    self.add(key_of(owner))

    def _dependents_keys(self, uid: str) -> list[str]:
        return [key for key, obj in self.cache.objects.items()
                if any(ref.uid == uid for ref in obj.metadata.owner_references or [])]

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Outcome:
        obj: Object | None = self.cache.get(key)
        if obj is None:
            return Done()
        try:
            if obj.metadata.deletion_timestamp and ORPHAN in (obj.metadata.finalizers or []):
                return await self._orphan_dependents(key, obj)
            if obj.metadata.deletion_timestamp and FOREGROUND_DELETION in (obj.metadata.finalizers or []):
                return await self._delete_dependents(key, obj)
            if obj.metadata.owner_references:
                return await self._check_owners(obj)
        except (Conflict, NotFound) as exc:
            log.debug("gc_conflict", key=key, error=exc.message)
            return RetryAfter(RETRY_SECONDS)
        return Done()

    async def _owner_exists(self, obj: Object, ref: OwnerReference) -> bool:
        owner = self.cache.by_uid.get(ref.uid)
        if owner is not None:
            return True
        if ref.kind == "Node":  # nodes are in the cache: a mirror pod's Node is gone
            return False
        resource = RESOURCE_OF_KIND.get(ref.kind)
        if resource is None:
            return True  # a kind this collector does not follow (validation refuses them)
        try:
            live = await self.api.get(resource, obj.metadata.namespace or "default", ref.name)
        except NotFound:
            return False
        return bool(live["metadata"].get("uid") == ref.uid)

    async def _check_owners(self, obj: Object) -> Outcome:
        refs = obj.metadata.owner_references or []
        missing = [ref for ref in refs if not await self._owner_exists(obj, ref)]
        if not missing:
            return Done()
        glog = log.bind(kind=obj.kind, namespace=obj.metadata.namespace, name=obj.metadata.name,
                        uid=obj.metadata.uid)
        resource = RESOURCE_OF_KIND[obj.kind]
        if len(missing) < len(refs):  # some owner is left: only drop the dangling references
            updated = obj.model_copy(deep=True)
            updated.metadata.owner_references = [r for r in refs if r not in missing]
            await self.api.update(resource, updated.to_wire())
            glog.info("dangling_owner_references_removed", owners=[r.uid for r in missing])
            return Done()
        if obj.metadata.deletion_timestamp:
            return Done()  # already going
        # a mirror pod of a deleted Node: no kubelet is left to finish a graceful deletion
        grace = 0 if any(ref.kind == "Node" for ref in missing) else None
        await self._delete(obj, reason="owner_gone", grace=grace)
        return Done()

    async def _delete(self, obj: Object, *, reason: str, grace: int | None = None) -> None:
        resource = RESOURCE_OF_KIND[obj.kind]
        # in the background: a dependent's own dependents then follow it through this collector
        policy = None if resource == "pods" else "Background"
        try:
            await self.api.delete(resource, obj.metadata.namespace or "default",
                                  obj.metadata.name or "", policy=policy, grace=grace)
        except NotFound:
            return
        log.info("dependent_deleted", kind=obj.kind, namespace=obj.metadata.namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid, reason=reason)

    async def _delete_dependents(self, key: str, owner: Object) -> Outcome:
        uid = owner.metadata.uid or ""
        blocking = 0
        for dep_key in self._dependents_keys(uid):
            dependent = self.cache.objects[dep_key]
            ref = next(r for r in dependent.metadata.owner_references or [] if r.uid == uid)
            if ref.block_owner_deletion:
                blocking += 1
            if dependent.metadata.deletion_timestamp is None:
                await self._delete(dependent, reason="owner_deleted_in_foreground")
        if blocking:
            return Done()  # each dependent's deletion queues this owner again
        await self._remove_finalizer(owner, FOREGROUND_DELETION)
        return Done()

    async def _orphan_dependents(self, key: str, owner: Object) -> Outcome:
        uid = owner.metadata.uid or ""
        for dep_key in self._dependents_keys(uid):
            dependent = self.cache.objects[dep_key]
            updated = dependent.model_copy(deep=True)
            updated.metadata.owner_references = [
                r for r in dependent.metadata.owner_references or [] if r.uid != uid] or None
            await self.api.update(RESOURCE_OF_KIND[dependent.kind], updated.to_wire())
            log.info("dependent_orphaned", kind=dependent.kind,
                     namespace=dependent.metadata.namespace, name=dependent.metadata.name,
                     uid=dependent.metadata.uid, owner=uid)
        await self._remove_finalizer(owner, ORPHAN)
        return Done()

    async def _remove_finalizer(self, obj: Object, finalizer: str) -> None:
        try:
            await self.api.remove_finalizer(RESOURCE_OF_KIND[obj.kind], obj, finalizer)
        except PeapodError as exc:
            if isinstance(exc, (Conflict, NotFound)):
                raise
            log.warning("finalizer_not_removed", kind=obj.kind, name=obj.metadata.name,
                        finalizer=finalizer, error=exc.message)
            return
        log.info("finalizer_removed", kind=obj.kind, namespace=obj.metadata.namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid, finalizer=finalizer)
