"""The ReplicaSet controller: keep ``spec.replicas`` pods running for every ReplicaSet.

A reconcile of one ReplicaSet (its key on the work queue) reads the cache,
claims its pods (``claiming.claim_pods``: adopt matching orphans, release
pods whose labels moved away), then creates or deletes the difference and
writes ``status``. It is level-triggered: it compares what is with what
should be, so running it twice, or after a restart, does the same thing.

What keeps it from creating a pod twice is ``Expectations``: before
creating N pods it expects N to appear and does not count again until the
informer has shown them (or the writes failed). Creations go out in
doubling batches (1, 2, 4 …, client-go's slow start), so a template the
apiserver refuses costs one request, not ``replicas`` of them; that refusal
becomes a ``FailedCreate`` event and the ``ReplicaFailure`` condition.

A pod event puts its controlling ReplicaSet's key on the queue (and, for an
orphan, every ReplicaSet of its namespace whose selector matches it).
"""

from __future__ import annotations

from typing import Any

import structlog

from peapod.api import Pod
from peapod.api.apps import ReplicaSet
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.claiming import (
    claim_pods,
    controller_reference,
    is_active,
    new_pod,
    pods_to_delete,
    replicaset_status,
)
from peapod.controllers.queueing import PodOwningController, adopt_and_release
from peapod.errors import Conflict, NotFound

log = structlog.get_logger("controllers.replicaset")

BURST_REPLICAS = 500  # Kubernetes' burstReplicas: at most this many creations per pass
RETRY_SECONDS = 1.0
WAIT_FOR_CACHE_SECONDS = 5.0


class ReplicaSetController(PodOwningController):
    name = "replicaset"
    owner_kind, owner_resource = "ReplicaSet", "replicasets"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(cache=cache, api=api, events=events, clock=clock)

    # -- events -------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, ReplicaSet):
            self.add(event.key)
        elif isinstance(obj, Pod):
            self._on_pod(event, previous)

    def _on_pod(self, event: WatchEvent[Object], previous: Object | None) -> None:
        pod = event.obj
        assert isinstance(pod, Pod)
        namespace = pod.metadata.namespace or "default"
        keys = set()
        for candidate in (pod, previous):
            ref = candidate.metadata.controller_ref() if isinstance(candidate, Pod) else None
            if ref is not None and ref.kind == "ReplicaSet":
                keys.add(s.kv_key("replicasets", namespace, ref.name))
        if pod.metadata.controller_ref() is None:  # an orphan: who might adopt it?
            keys.update(_key(rs) for rs in self.cache.of_kind("replicasets", namespace)
                        if rs.spec.selector and rs.spec.selector.matches(pod.metadata.labels))
        self.observe_pod(event)
        for key in keys:
            self.add(key)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Outcome:
        rs: ReplicaSet | None = self.cache.get(key)
        if rs is None:
            self.expectations.forget(key)
            return Done()
        if not self.expectations.satisfied(key):
            return RetryAfter(WAIT_FOR_CACHE_SECONDS)  # pod events bring it back sooner
        rlog = log.bind(namespace=rs.metadata.namespace, name=rs.metadata.name,
                        uid=rs.metadata.uid)
        namespace = rs.metadata.namespace or "default"
        deleting = rs.metadata.deletion_timestamp is not None
        claim = claim_pods(rs.metadata.uid or "", rs.spec.selector, self.cache.of_kind(
            "pods", namespace), owner_deleting=deleting) if rs.spec.selector else None
        if claim is None:
            return Done()
        try:
            await adopt_and_release(self.api, "pods", rs, claim)
        except (Conflict, NotFound) as exc:
            rlog.info("claim_conflict", error=exc.message)
            return RetryAfter(RETRY_SECONDS)
        active = [p for p in claim.owned if is_active(p)]
        failure = None if deleting else await self._manage(rs, key, active, rlog)
        return await self._write_status(rs, active, failure, rlog)

    async def _manage(self, rs: ReplicaSet, key: str, active: list[Pod],
                      rlog: Any) -> str | None:
        """Create or delete the difference; the first creation error, if any."""
        diff = len(active) - rs.spec.replicas
        if diff < 0:
            return await self._create(rs, key, min(-diff, BURST_REPLICAS), rlog)
        if diff > 0:
            await self._delete(rs, key, pods_to_delete(active, diff), rlog)
        return None

    async def _create(self, rs: ReplicaSet, key: str, count: int, rlog: Any) -> str | None:
        meta = rs.metadata
        pod = new_pod(rs.spec.template, namespace=meta.namespace or "default",
                      prefix=f"{meta.name}-",
                      owner=controller_reference("ReplicaSet", meta.name or "", meta.uid or ""))
        return await self.create_pods(rs, key, pod, count, rlog)

    async def _delete(self, rs: ReplicaSet, key: str, pods: list[Pod], rlog: Any) -> None:
        self.expectations.expect(key, deletes={p.metadata.uid or "" for p in pods})
        for pod in pods:
            await self.delete_pod(rs, key, pod, rlog)

    async def _write_status(self, rs: ReplicaSet, active: list[Pod], failure: str | None,
                            rlog: Any) -> Outcome:
        status = replicaset_status(rs, active, failure=failure)
        if rs.status is None or status.to_wire() != rs.status.to_wire():
            updated = rs.model_copy(deep=True)
            updated.status = status
            try:
                await self.api.update("replicasets", updated.to_wire(), status=True)
            except (Conflict, NotFound) as exc:
                rlog.debug("status_conflict", error=exc.message)
                return RetryAfter(RETRY_SECONDS)
        return RetryAfter(RETRY_SECONDS * 5) if failure else Done()


def _key(rs: ReplicaSet) -> str:
    return s.kv_key("replicasets", rs.metadata.namespace or "default", rs.metadata.name or "")
