"""The scheduling loop: pick a node for every unbound pod and bind it.

A pass runs whenever the cache changed: a pod or node written or deleted, a
node's lease come (back) to life. Nothing is polled: a pod that fits nowhere
waits for such a change, with one safety pass every five minutes as
Kubernetes' ``podMaxInUnschedulablePodsDuration`` flushes its unschedulable
queue. Pods with ``schedulingGates`` wait for them to be removed (the
apiserver shows them ``SchedulingGated``), and pods that name another
``schedulerName`` are left to it, Pending, as in Kubernetes.

Pending pods are taken in Kubernetes' queue order: higher ``spec.priority``
first, then the older. A pod that fits nowhere may preempt pods of lower
priority (``preemption.py``): the scheduler nominates a node for it
(``status.nominatedNodeName``), deletes the victims gracefully with a
``Preempted`` event each, and binds the pod in a later pass, once the
victims are gone and a change woke it.

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

from peapod.api import Node, Pod
from peapod.api.scheduling import DEFAULT_SCHEDULER
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.workqueue import Done, Outcome, RetryAfter, WorkQueue
from peapod.errors import Conflict, NotFound, PeapodError
from peapod.scheduler.cache import ClusterCache
from peapod.scheduler.filters import Feasibility, feasible_nodes
from peapod.scheduler.preemption import (
    NOT_HELPFUL,
    Refusal,
    find_preemption,
    priority,
    with_nominated,
)
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
        """Unbound pods for this scheduler, higher priority first, then the older."""
        return sorted((p for p in self.cache.pods.values()
                       if not p.spec.node_name and not p.metadata.deletion_timestamp
                       and not p.spec.scheduling_gates
                       and p.spec.scheduler_name == DEFAULT_SCHEDULER),
                      key=lambda p: (-priority(p), p.metadata.creation_timestamp or ""))

    async def schedule_once(self) -> int:
        """One pass over every unbound pod; returns how many were bound."""
        bound = 0
        nodes = sorted(self.cache.nodes.values(), key=lambda n: n.metadata.name or "")
        live = self.cache.live_nodes(self.clock.now())
        for pod in self.pending():
            pods = list(self.cache.pods.values())
            result = feasible_nodes(pod, nodes, with_nominated(pod, pods), live=live,
                                    volumes=self.cache.volumes)
            if not result.nodes:
                await self._preempt_or_report(pod, result, nodes, pods, live)
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

    async def _preempt_or_report(self, pod: Pod, result: Feasibility, nodes: list[Node],
                                 pods: list[Pod], live: set[str]) -> None:
        """Kubernetes' PostFilter: preempt for the pod if it may, else say why not. A PreFilter's
        failure (a missing claim) fails every node alike: evicting pods cannot help there."""
        message = result.message()
        found = (find_preemption(pod, nodes, pods, live=live, volumes=self.cache.volumes)
                 if not result.unresolvable
                 else Refusal(f"0/{len(nodes)} nodes are available: {len(nodes)} {NOT_HELPFUL}."))
        if isinstance(found, Refusal):
            await self._report_unschedulable(pod, f"{message} preemption: {found.message}")
            return
        await self._report_unschedulable(pod, message, nominated=found.node_name)
        for victim in found.victims:
            await self._evict(victim, preemptor=pod, node_name=found.node_name)

    async def _evict(self, victim: Pod, *, preemptor: Pod, node_name: str) -> None:
        """Delete a victim gracefully (its own grace period), with the event Kubernetes writes."""
        meta = victim.metadata
        victim_log = log.bind(pod=victim.key, uid=meta.uid, preemptor=preemptor.key,
                              preemptor_uid=preemptor.metadata.uid, node=node_name)
        try:
            deleted = await request(self.nc, s.api("pods", "delete"), {
                "namespace": meta.namespace, "name": meta.name})
        except PeapodError as exc:  # gone or changed meanwhile: the next pass looks again
            victim_log.info("preemption_victim_not_deleted", error=exc.message)
            self._retry_soon = True
            return
        victim_log.info("pod_preempted")
        if not deleted.get("finished"):  # reflect our write: the next pass sees it terminating
            self.cache.pods[s.kv_key("pods", meta.namespace, meta.name or "")] = \
                Pod.model_validate(deleted["object"])
        await self.events.record(victim.to_wire(), reason="Preempted",
                                 message=f"Preempted by pod {preemptor.metadata.uid} on node "
                                         f"{node_name}")

    async def _report_unschedulable(self, pod: Pod, message: str, *,
                                    nominated: str | None = None) -> None:
        uid = pod.metadata.uid or ""
        last = self._last_failure.get(uid)
        now = self.clock.monotonic()
        repeated = bool(last and last[0] == message and now - last[1] < REPEAT_FAILED_EVENT_AFTER)
        if not repeated:
            self._last_failure[uid] = (message, now)
            log.info("pod_unschedulable", pod=pod.key, uid=uid, reason=message,
                     nominated=nominated)
            await self.events.record(pod.to_wire(), reason="FailedScheduling", message=message,
                                     type="Warning")
        if nominated or (not repeated and _scheduled_condition_message(pod) != message):
            await self._mark_unschedulable(pod, message, nominated=nominated)

    async def _mark_unschedulable(self, pod: Pod, message: str, *,
                                  nominated: str | None = None) -> None:
        """``PodScheduled=False``, reason ``Unschedulable``, on the pod (as Kubernetes), and
        the node a preemption freed for it (``status.nominatedNodeName``)."""
        meta = pod.metadata
        try:
            stored = await request(self.nc, s.api("pods", "unschedulable"), {
                "namespace": meta.namespace, "name": meta.name, "uid": meta.uid,
                "message": message, **({"nominatedNodeName": nominated} if nominated else {})})
        except PeapodError as exc:  # the pod changed or went: the next pass looks again
            log.info("unschedulable_not_recorded", pod=pod.key, uid=meta.uid, error=exc.message)
            return
        if nominated:  # reflect our write, so this pass counts the nominated pod on its node
            self.cache.pods[s.kv_key("pods", meta.namespace, meta.name or "")] = \
                Pod.model_validate(stored)

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
