"""The Job controller: run pods to completion, within parallelism, backoffLimit and deadlines.

A reconcile of one Job reads its pods (by controller reference) from the
cache, lets ``jobs.plan_job`` decide, writes ``status`` (the ends it
recorded in ``uncountedTerminatedPods`` included), only then removes the
finalizer ``batch.kubernetes.io/job-tracking`` from the pods whose end is
recorded, and creates or deletes pods (with the same expectations and
slow-start batches as the ReplicaSet controller, so a restart or a stale
cache never runs a pod twice). The finalizer never outlives its use: a Job
being deleted releases all its pods, and a pod that holds it without a Job
in the cache (its Job deleted, or orphaned) is released under its own key
(``pods.<namespace>.<name>`` on the same queue), so neither a pod nor a
Job's deletion waits on it.
A finished Job with ``ttlSecondsAfterFinished`` is deleted once that has
passed; the garbage collector then removes its pods. Deadlines and TTLs are
timers on the work queue (``RetryAfter``), read from the injected clock.
"""

from __future__ import annotations

import structlog

from peapod.api import Pod
from peapod.api.base import now_rfc3339
from peapod.api.batch import Job
from peapod.api.meta import JOB_TRACKING_FINALIZER
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object, key_of
from peapod.controllers.claiming import controller_reference, new_pod
from peapod.controllers.jobs import holds_finalizer, plan_job, ttl_due_in
from peapod.controllers.queueing import PodOwningController
from peapod.errors import Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.job")

RETRY_SECONDS = 1.0
WAIT_FOR_CACHE_SECONDS = 5.0


class JobController(PodOwningController):
    name = "job"
    owner_kind, owner_resource = "Job", "jobs"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(cache=cache, api=api, events=events, clock=clock)

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, Job):
            self.add(event.key)
        elif isinstance(obj, Pod):
            if (key := self.observe_pod(event)) is not None:
                self.add(key)
            if event.type != "DELETED" and self._orphaned(obj):
                self.add(event.key)

    def initial_keys(self) -> list[str]:
        return [*super().initial_keys(),
                *(key_of(p) for p in self.cache.of_kind("pods") if self._orphaned(p))]

    def _orphaned(self, pod: Pod) -> bool:
        """A pod holding the finalizer whose Job is not (or no longer) in the cache."""
        ref = pod.metadata.controller_ref()
        return holds_finalizer(pod) and (ref is None or ref.kind != "Job" or
                                         ref.uid not in self.cache.by_uid)

    async def reconcile(self, key: str) -> Outcome:
        if key.startswith(s.kv_prefix("pods")):
            pod: Pod | None = self.cache.get(key)
            if pod is None or not self._orphaned(pod):
                return Done()
            return await self._release([pod], log.bind(namespace=pod.metadata.namespace))
        job: Job | None = self.cache.get(key)
        if job is None:
            self.expectations.forget(key)
            return Done()
        pods = [p for p in self.cache.of_kind("pods", job.metadata.namespace or "default")
                if (ref := p.metadata.controller_ref()) and ref.uid == job.metadata.uid]
        jlog = log.bind(namespace=job.metadata.namespace, name=job.metadata.name,
                        uid=job.metadata.uid)
        if job.metadata.deletion_timestamp:
            self.expectations.forget(key)
            return await self._release([p for p in pods if holds_finalizer(p)], jlog)
        if not self.expectations.satisfied(key):
            return RetryAfter(WAIT_FOR_CACHE_SECONDS)
        due = ttl_due_in(job, self.clock.now())
        if due is not None:
            released = await self._release([p for p in pods if holds_finalizer(p)], jlog)
            return released if not isinstance(released, Done) else \
                await self._expire(job, due, jlog)
        plan = plan_job(job, pods, now=self.clock.now(), now_text=now_rfc3339())
        outcome = await self._write_status(job, plan.status, jlog)
        if not isinstance(outcome, Done):
            return outcome  # nothing is released before its end is recorded
        released = await self._release(plan.release, jlog)
        if plan.create:
            meta = job.metadata
            pod = new_pod(job.spec.template, namespace=meta.namespace or "default",
                          prefix=f"{meta.name}-",
                          owner=controller_reference("Job", meta.name or "", meta.uid or ""),
                          finalizers=[JOB_TRACKING_FINALIZER])
            await self.create_pods(job, key, pod, plan.create, jlog)
        if plan.delete:
            self.expectations.expect(key, deletes={p.metadata.uid or "" for p in plan.delete})
            for victim in plan.delete:
                await self.delete_pod(job, key, victim, jlog)
        if not isinstance(released, Done):
            return released
        if plan.recheck_in is not None:
            return RetryAfter(plan.recheck_in + 0.1)
        return Done()

    async def _release(self, pods: list[Pod], jlog: structlog.BoundLogger) -> Outcome:
        """Remove the finalizer from ``pods`` (their ends are recorded, or nothing counts
        them); a pod that changed meanwhile is tried again on a fresh cache."""
        retry = False
        for pod in pods:
            try:
                await self.api.remove_finalizer("pods", pod, JOB_TRACKING_FINALIZER)
            except (Conflict, NotFound):
                retry = True
                continue
            except PeapodError as exc:
                jlog.warning("finalizer_not_removed", pod=pod.metadata.name,
                             pod_uid=pod.metadata.uid, error=exc.message)
                retry = True
                continue
            jlog.info("finalizer_removed", pod=pod.metadata.name, pod_uid=pod.metadata.uid,
                      finalizer=JOB_TRACKING_FINALIZER)
        return RetryAfter(RETRY_SECONDS) if retry else Done()

    async def _write_status(self, job: Job, status: object, jlog: structlog.BoundLogger
                            ) -> Outcome:
        if job.status is not None and job.status.to_wire() == status.to_wire():  # type: ignore[attr-defined]
            return Done()
        updated = job.model_copy(deep=True)
        updated.status = status  # type: ignore[assignment]
        try:
            await self.api.update("jobs", updated.to_wire(), status=True)
        except (Conflict, NotFound):
            return RetryAfter(RETRY_SECONDS)
        finished = updated.finished()
        was = job.finished()
        if finished is not None and was is None:
            jlog.info("job_finished", condition=finished.type, reason=finished.reason)
            reason = "Completed" if finished.type == "Complete" else finished.reason or "Failed"
            await self.events.record(job.to_wire(), reason=reason,
                                     type="Normal" if finished.type == "Complete" else "Warning",
                                     message="Job completed" if finished.type == "Complete"
                                     else finished.message or "Job failed")
        return Done()

    async def _expire(self, job: Job, due: float, jlog: structlog.BoundLogger) -> Outcome:
        if due > 0:
            return RetryAfter(due + 0.1)
        try:
            await self.api.delete("jobs", job.metadata.namespace or "default",
                                  job.metadata.name or "", policy="Background")
        except NotFound:
            return Done()
        jlog.info("job_expired", ttl_seconds=job.spec.ttl_seconds_after_finished)
        return Done()
