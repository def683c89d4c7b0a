"""The DaemonSet controller: one pod on every node that should run it (rules in ``daemons.py``).

A reconcile of one DaemonSet reads the cache (its pods by controller
reference, every node), creates the missing pods, bound to their node at
creation, deletes the extra, misplaced and (rolling update) outdated ones,
and writes ``status``. Node events queue every DaemonSet, so a node that
joins gets its daemons at once and a node that is deleted loses them.
``Expectations`` keep a pass from creating a node's pod twice before the
informer shows the first; a restarted controller lists first, so it finds
them all.
"""

from __future__ import annotations

from typing import Any

import structlog

from peapod.api import Node, Pod
from peapod.api.apps import DaemonSet
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.claiming import controller_reference, new_pod
from peapod.controllers.daemons import REVISION_HASH, bind_to_node, plan_daemonset
from peapod.controllers.queueing import PodOwningController
from peapod.controllers.rollout import template_hash
from peapod.errors import Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.daemonset")

RETRY_SECONDS = 1.0
WAIT_FOR_CACHE_SECONDS = 5.0


class DaemonSetController(PodOwningController):
    name = "daemonset"
    owner_kind, owner_resource = "DaemonSet", "daemonsets"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(cache=cache, api=api, events=events, clock=clock)

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, DaemonSet):
            self.add(event.key)
        elif isinstance(obj, Node):
            for daemonset_key in self.initial_keys():
                self.add(daemonset_key)
        elif isinstance(obj, Pod) and (key := self.observe_pod(event)) is not None:
            self.add(key)

    async def reconcile(self, key: str) -> Outcome:
        ds: DaemonSet | None = self.cache.get(key)
        if ds is None:
            self.expectations.forget(key)
            return Done()
        if not self.expectations.satisfied(key):
            return RetryAfter(WAIT_FOR_CACHE_SECONDS)
        dlog = log.bind(namespace=ds.metadata.namespace, name=ds.metadata.name,
                        uid=ds.metadata.uid)
        pods = [p for p in self.cache.of_kind("pods", ds.metadata.namespace or "default")
                if (ref := p.metadata.controller_ref()) and ref.uid == ds.metadata.uid]
        hash_ = template_hash(ds.spec.template)
        plan = plan_daemonset(ds, self.cache.of_kind("nodes"), pods, hash_=hash_)
        if ds.metadata.deletion_timestamp is None:
            self.expectations.expect(key, adds=len(plan.create_on),
                                     deletes={p.metadata.uid or "" for p in plan.delete})
            for node in plan.create_on:
                await self._create(ds, key, node, hash_, dlog)
            for pod in plan.delete:
                await self.delete_pod(ds, key, pod, dlog)
        if ds.status is None or ds.status.to_wire() != plan.status.to_wire():
            updated = ds.model_copy(deep=True)
            updated.status = plan.status
            try:
                await self.api.update("daemonsets", updated.to_wire(), status=True)
            except (Conflict, NotFound):
                return RetryAfter(RETRY_SECONDS)
        return Done()

    async def _create(self, ds: DaemonSet, key: str, node: str, hash_: str, dlog: Any) -> None:
        meta = ds.metadata
        pod = new_pod(ds.spec.template, namespace=meta.namespace or "default",
                      prefix=f"{meta.name}-",
                      owner=controller_reference("DaemonSet", meta.name or "", meta.uid or ""))
        bind_to_node(pod.spec, node)  # the scheduler binds it (matchFields metadata.name)
        pod.metadata.labels = {**(pod.metadata.labels or {}), REVISION_HASH: hash_}
        try:
            created = await self.api.create("pods", pod.to_wire())
        except PeapodError as exc:
            self.expectations.created(key)
            dlog.warning("pod_create_failed", node=node, error=exc.message)
            await self.events.record(ds.to_wire(), reason="FailedCreate", type="Warning",
                                     message=f"Error creating: {exc.message}")
            return
        name = created["metadata"]["name"]
        dlog.info("pod_created", pod=name, node=node)
        await self.events.record(ds.to_wire(), reason="SuccessfulCreate",
                                 message=f"Created pod: {name}")


def _key(ds: DaemonSet) -> str:
    return s.kv_key("daemonsets", ds.metadata.namespace or "default", ds.metadata.name or "")
