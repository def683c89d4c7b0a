"""The scheduling loop: pick a node for every unbound pod and bind it.

A pass runs whenever the cache changed: a pod or node written or deleted, a
node's lease come (back) to life. Nothing is polled: a pod that fits nowhere
waits for such a change, with one safety pass every five minutes as
Kubernetes' ``podMaxInUnschedulablePodsDuration`` flushes its unschedulable
queue. Pods with ``schedulingGates`` wait for them to be removed (the
apiserver shows them ``SchedulingGated``), and pods that name another
``schedulerName`` are left to it, Pending, as in Kubernetes.

Passes run on a ``WorkQueue`` under one key, not one key per pod: each
decision uses capacity the next must see, so scheduling is sequential by
nature, as Kubernetes' scheduler binds one pod at a time. The
queue gives the pass what every reconciler gets: changes folded into one
more pass, ``RetryAfter`` while pods are left pending, a crash logged and
retried with back-off, and the worker awaited on shutdown.

Binding goes through the apiserver's ``pods.bind`` with the pod's uid, a
compare-and-set there; losing it means someone else changed the pod, and
the next pass looks again. A pod that fits nowhere stays Pending with a
FailedScheduling event saying why, repeated only when the reason changes or
a minute has passed (at the next pass), so the event stream stays readable.
"""

from __future__ import annotations

import asyncio

import structlog
from nats.aio.client import Client as NATS

from peapod.api import Pod
from peapod.api.scheduling import DEFAULT_SCHEDULER
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.workqueue import Done, Outcome, RetryAfter, WorkQueue
from peapod.errors import Conflict, NotFound, PeapodError
from peapod.scheduler.cache import ClusterCache
from peapod.scheduler.filters import feasible_nodes
from peapod.scheduler.scores import pick_node

log = structlog.get_logger("scheduler")

RETRY_PERIOD = 300.0  # a safety net only: changes wake the scheduler
BIND_RETRY = 1.0  # a bind that failed for another reason than a conflict
REPEAT_FAILED_EVENT_AFTER = 60.0
PASS_KEY = "pending-pods"  # the one key of the scheduler's work queue


class Scheduler:
    def __init__(self, *, nc: NATS, cache: ClusterCache, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.nc = nc
        self.cache = cache
        self.events = events
        self.clock = clock
        self.queue: WorkQueue | None = None  # while ``run`` runs
        self._last_failure: dict[str, tuple[str, float]] = {}
        self._retry_soon = False
        cache.on_change(self._wake)

    def pending(self) -> list[Pod]:
        return sorted((p for p in self.cache.pods.values()
                       if not p.spec.node_name and not p.metadata.deletion_timestamp
                       and not p.spec.scheduling_gates
                       and p.spec.scheduler_name == DEFAULT_SCHEDULER),
                      key=lambda p: p.metadata.creation_timestamp or "")

    async def schedule_once(self) -> int:
        """One pass over every unbound pod; returns how many were bound."""
        bound = 0
        nodes = sorted(self.cache.nodes.values(), key=lambda n: n.metadata.name or "")
        live = self.cache.live_nodes(self.clock.now())
        for pod in self.pending():
            pods = list(self.cache.pods.values())
            result = feasible_nodes(pod, nodes, pods, live=live, volumes=self.cache.volumes)
            if not result.nodes:
                await self._report_unschedulable(pod, result.message())
                continue
            node = pick_node(pod, result.nodes, pods, all_nodes=nodes)
            if await self._bind(pod, node.metadata.name or ""):
                bound += 1
        return bound

    async def _bind(self, pod: Pod, node_name: str) -> bool:
        meta = pod.metadata
        bound_log = log.bind(pod=pod.key, uid=meta.uid, node=node_name)
        try:
            stored = await request(self.nc, s.api("pods", "bind"), {
                "namespace": meta.namespace, "name": meta.name, "uid": meta.uid,
                "nodeName": node_name})
        except PeapodError as exc:
            bound_log.info("bind_failed", error=exc.message)
            # a conflict or a vanished pod is a change the informer brings; anything else is not
            self._retry_soon |= not isinstance(exc, Conflict | NotFound)
            return False
        # reflect our own write at once, so the next pod in this pass sees the usage
        self.cache.pods[s.kv_key("pods", meta.namespace, meta.name or "")] = Pod.model_validate(stored)
        self._last_failure.pop(meta.uid or "", None)
        bound_log.info("pod_scheduled")
        await self.events.record(stored, reason="Scheduled",
                                 message=f"Successfully assigned {pod.key} to {node_name}")
        return True

    async def _report_unschedulable(self, pod: Pod, message: str) -> None:
        uid = pod.metadata.uid or ""
        last = self._last_failure.get(uid)
        now = self.clock.monotonic()
        if last and last[0] == message and now - last[1] < REPEAT_FAILED_EVENT_AFTER:
            return
        self._last_failure[uid] = (message, now)
        log.info("pod_unschedulable", pod=pod.key, uid=uid, reason=message)
        await self.events.record(pod.to_wire(), reason="FailedScheduling", message=message,
                                 type="Warning")
        if _scheduled_condition_message(pod) != message:
            await self._mark_unschedulable(pod, message)

    async def _mark_unschedulable(self, pod: Pod, message: str) -> None:
        """``PodScheduled=False``, reason ``Unschedulable``, on the pod (as Kubernetes)."""
        meta = pod.metadata
        try:
            await request(self.nc, s.api("pods", "unschedulable"), {
                "namespace": meta.namespace, "name": meta.name, "uid": meta.uid,
                "message": message})
        except PeapodError as exc:  # the pod changed or went: the next pass looks again
            log.info("unschedulable_not_recorded", pod=pod.key, uid=meta.uid, error=exc.message)

    async def reconcile(self, key: str) -> Outcome:
        """One pass; changes bring the next, ``RETRY_PERIOD`` is a safety net while pods wait."""
        self._retry_soon = False
        await self.schedule_once()
        if not self.pending():
            return Done()
        return RetryAfter(BIND_RETRY if self._retry_soon else RETRY_PERIOD)

    async def run(self) -> None:
        """Schedule on every change once the cache is synced, until cancelled."""
        await self.cache.wait_synced()
        self.queue = WorkQueue(self.reconcile, name="scheduler", clock=self.clock)
        self._wake()
        try:
            await asyncio.Event().wait()
        finally:
            queue, self.queue = self.queue, None
            await queue.close()

    def _wake(self) -> None:
        if self.queue is not None:
            self.queue.add(PASS_KEY)


def _scheduled_condition_message(pod: Pod) -> str | None:
    conditions = pod.status.conditions if pod.status else None
    return next((c.message for c in conditions or [] if c.type == "PodScheduled"), None)
