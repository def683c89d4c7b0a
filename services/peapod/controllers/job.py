"""The Job controller: run pods to completion, within parallelism, backoffLimit and deadlines.

A reconcile of one Job reads its pods (by controller reference) from the
cache, lets ``jobs.plan_job`` decide, creates or deletes pods (with the
same expectations and slow-start batches as the ReplicaSet controller, so a
restart or a stale cache never runs a pod twice), and writes ``status``.
A finished Job with ``ttlSecondsAfterFinished`` is deleted once that has
passed; the garbage collector then removes its pods. Deadlines and TTLs are
timers on the work queue (``RetryAfter``), read from the injected clock.
"""

from __future__ import annotations

import structlog

from peapod.api import Pod
from peapod.api.base import now_rfc3339
from peapod.api.batch import Job
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.claiming import controller_reference, new_pod
from peapod.controllers.jobs import plan_job, ttl_due_in
from peapod.controllers.queueing import PodOwningController
from peapod.errors import Conflict, NotFound

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
        elif isinstance(obj, Pod) and (key := self.observe_pod(event)) is not None:
            self.add(key)

    async def reconcile(self, key: str) -> Outcome:
        job: Job | None = self.cache.get(key)
        if job is None or job.metadata.deletion_timestamp:
            self.expectations.forget(key)
            return Done()
        if not self.expectations.satisfied(key):
            return RetryAfter(WAIT_FOR_CACHE_SECONDS)
        jlog = log.bind(namespace=job.metadata.namespace, name=job.metadata.name,
                        uid=job.metadata.uid)
        due = ttl_due_in(job, self.clock.now())
        if due is not None:
            return await self._expire(job, due, jlog)
        pods = [p for p in self.cache.of_kind("pods", job.metadata.namespace or "default")
                if (ref := p.metadata.controller_ref()) and ref.uid == job.metadata.uid]
        plan = plan_job(job, pods, now=self.clock.now(), now_text=now_rfc3339())
        if plan.create:
            meta = job.metadata
            pod = new_pod(job.spec.template, namespace=meta.namespace or "default",
                          prefix=f"{meta.name}-",
                          owner=controller_reference("Job", meta.name or "", meta.uid or ""))
            await self.create_pods(job, key, pod, plan.create, jlog)
        if plan.delete:
            self.expectations.expect(key, deletes={p.metadata.uid or "" for p in plan.delete})
            for victim in plan.delete:
                await self.delete_pod(job, key, victim, jlog)
        outcome = await self._write_status(job, plan.status, jlog)
        if plan.recheck_in is not None and isinstance(outcome, Done):
            return RetryAfter(plan.recheck_in + 0.1)
        return outcome

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
