"""The CronJob controller: a Job at each time of the schedule, as Kubernetes' CronJob controller.

A reconcile of one CronJob (``syncCronJob`` and ``cleanupFinishedJobs`` of
Kubernetes' ``cronjob_controllerv2.go``, with its events and messages):

1. ``status.active`` follows the Jobs the CronJob controls: a finished one
   leaves it (``SawCompletedJob``), a gone one too (``MissingJob``, checked
   with a live ``get``), an unfinished one it does not list is reported
   (``UnexpectedJob``); ``lastSuccessfulTime`` is the latest completion;
2. unless suspended or being deleted, the most recent unmet time of the
   schedule (``cronjobs.most_recent_schedule_time``, from the injected clock)
   runs, unless it is older than ``startingDeadlineSeconds``
   (``MissSchedule``; see ``_report_missed``), already ran, or ``Forbid`` finds a Job active
   (``JobAlreadyActive``); ``Replace`` deletes the active Jobs first;
3. the Job is ``<cronjob>-<minutes since the epoch>``: a second try after a
   restart gets ``AlreadyExists`` and adopts it into ``active``, never
   doubling a run; finished Jobs beyond the history limits are deleted,
   oldest first, and the garbage collector deletes their pods;
4. the key comes back at the schedule's next time (``RetryAfter``).

Between its status write and the informer showing it, the cache holds the
older CronJob; a pass then waits for the newer one rather than acting twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

import structlog

from peapod.api.batch import CronJob, CronJobStatus, Job
from peapod.api.cron import CronError, CronSchedule, parse_schedule
from peapod.api.meta import ObjectReference
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.cronjobs import (
    MANY_MISSED,
    TOO_MANY_MISSED,
    finished_kind,
    job_for,
    job_name,
    jobs_beyond_history,
    last_successful_time,
    local_zone,
    most_recent_schedule_time,
    requeue_in,
    rfc1123z,
    rfc3339_utc,
    zone_of,
)
from peapod.controllers.queueing import QueuedController
from peapod.errors import AlreadyExists, Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.cronjob")

RETRY_SECONDS = 1.0
WAIT_FOR_CACHE_SECONDS = 5.0


class CronJobController(QueuedController):
    name = "cronjob"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK, zone: tzinfo | None = None) -> None:
        super().__init__(cache=cache, clock=clock)
        self.api = api
        self.events = events
        self.zone = zone or local_zone()  # for a CronJob without timeZone, as Kubernetes
        self._written: dict[str, int] = {}  # key -> the revision of our last status write
        cache.on_event(self._on_event)

    def initial_keys(self) -> list[str]:
        return [self._key(o.metadata.namespace, o.metadata.name)
                for o in self.cache.of_kind("cronjobs")]

    @staticmethod
    def _key(namespace: str | None, name: str | None) -> str:
        return s.kv_key("cronjobs", namespace or "default", name or "")

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, CronJob):
            if event.type == "DELETED":
                self._written.pop(event.key, None)
            self.add(event.key)
        elif isinstance(obj, Job):
            ref = obj.metadata.controller_ref()
            if ref is not None and ref.kind == "CronJob":
                self.add(self._key(obj.metadata.namespace, ref.name))

    async def reconcile(self, key: str) -> Outcome:
        cj: CronJob | None = self.cache.get(key)
        if cj is None:
            return Done()
        if int(cj.metadata.resource_version or 0) < self._written.get(key, 0):
            return RetryAfter(WAIT_FOR_CACHE_SECONDS)  # our own status write is on its way
        sync = _Sync(self, cj)
        outcome = await sync.run()
        if await sync.clean_up_history():
            sync.changed = True
        if sync.changed:
            written = await self._write_status(cj, sync.status, sync.log)
            if written is not None:
                return written
        return outcome

    async def _write_status(self, cj: CronJob, status: CronJobStatus, clog: Any
                            ) -> Outcome | None:
        updated = cj.model_copy(deep=True)
        updated.status = status
        try:
            stored = await self.api.update("cronjobs", updated.to_wire(), status=True)
        except (Conflict, NotFound):
            return RetryAfter(RETRY_SECONDS)
        revision = stored.get("metadata", {}).get("resourceVersion")
        if revision is not None:
            self._written[self._key(cj.metadata.namespace, cj.metadata.name)] = int(revision)
        clog.debug("cronjob_status_written", active=len(status.active or []),
                   last_schedule_time=status.last_schedule_time)
        return None


class _Sync:
    """One pass over one CronJob (Kubernetes' ``syncCronJob``)."""

    def __init__(self, controller: CronJobController, cj: CronJob) -> None:
        self.c = controller
        self.cj = cj
        meta = cj.metadata
        self.namespace = meta.namespace or "default"
        self.log = log.bind(namespace=self.namespace, name=meta.name, uid=meta.uid)
        self.status = (cj.status or CronJobStatus()).model_copy(deep=True)
        self.changed = False
        self.jobs: list[Job] = [
            j for j in controller.cache.of_kind("jobs", self.namespace)
            if (ref := j.metadata.controller_ref()) and ref.uid == meta.uid]

    async def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        await self.c.events.record(self.cj.to_wire(), reason=reason, message=message,
                                   type="Warning" if warning else "Normal")

    def _active_uids(self) -> set[str]:
        return {ref.uid or "" for ref in self.status.active or []}

    def _drop_active(self, uid: str | None) -> None:
        self.status.active = [r for r in self.status.active or [] if r.uid != uid] or None
        self.changed = True

    async def _sync_active(self) -> None:
        listed = self._active_uids()
        for job in self.jobs:
            kind = finished_kind(job)
            if job.metadata.uid not in listed and kind is None:
                await self.event("UnexpectedJob", "Saw a job that the controller did not "
                                 f"create or forgot: {job.metadata.name}", warning=True)
            elif job.metadata.uid in listed and kind is not None:
                self._drop_active(job.metadata.uid)
                await self.event("SawCompletedJob", f"Saw completed job: {job.metadata.name}, "
                                 f"condition: {kind}")
        succeeded = last_successful_time(self.cj, self.jobs)
        if succeeded != self.status.last_successful_time:
            self.status.last_successful_time, self.changed = succeeded, True
        present = {j.metadata.uid for j in self.jobs}
        for ref in list(self.status.active or []):
            if ref.uid in present:
                continue
            try:  # the cache may lag: ask the apiserver before calling it missing
                await self.c.api.get("jobs", ref.namespace or self.namespace, ref.name or "")
            except NotFound:
                await self.event("MissingJob", f"Active job went missing: {ref.name}")
                self._drop_active(ref.uid)

    async def run(self) -> Outcome:
        await self._sync_active()
        cj = self.cj
        if cj.metadata.deletion_timestamp or cj.spec.suspend:
            return Done()
        try:
            zone = zone_of(cj, self.c.zone)
        except ValueError as exc:
            await self.event("UnknownTimeZone", f'invalid timeZone: "{cj.spec.time_zone}": '
                             f"{exc}", warning=True)
            return Done()
        try:
            schedule = parse_schedule(cj.spec.schedule)
        except CronError as exc:
            await self.event("UnparseableSchedule", f'unparseable schedule: "{cj.spec.schedule}"'
                             f" : {exc}", warning=True)
            return Done()
        now = datetime.fromtimestamp(self.c.clock.now(), UTC)
        try:
            recent = most_recent_schedule_time(cj, now, schedule, zone, with_deadline=True)
        except ValueError as exc:
            await self.event("InvalidSchedule", f"invalid schedule: {cj.spec.schedule} : {exc}",
                             warning=True)
            return Done()
        if recent.missed > MANY_MISSED and recent.most_recent is not None:
            self.log.info("too_many_missed_times", missed=recent.missed)
            await self.event("TooManyMissedTimes", TOO_MANY_MISSED, warning=True)
        scheduled = recent.most_recent
        if scheduled is None:
            await self._report_missed(now, schedule, zone)
        else:
            outcome = await self._start(scheduled)
            if outcome is not None:
                return outcome
        counted = self.cj.model_copy(update={"status": self.status})  # the new lastScheduleTime
        return RetryAfter(requeue_in(counted, now, schedule, zone))

    async def _report_missed(self, now: datetime, schedule: CronSchedule, zone: tzinfo) -> None:
        """A time older than ``startingDeadlineSeconds`` that never ran: ``MissSchedule``.

        Kubernetes means to say so, but its search starts at the deadline, so its
        controller never does (kubernetes#101148); peapod looks past the deadline for it."""
        cj, deadline = self.cj, self.cj.spec.starting_deadline_seconds
        if deadline is None:
            return
        try:
            recent = most_recent_schedule_time(cj, now, schedule, zone, with_deadline=False)
        except ValueError:
            return
        missed = recent.most_recent
        if missed is None or missed.timestamp() + deadline >= now.timestamp():
            return
        self.log.info("missed_starting_window", scheduled=rfc3339_utc(missed))
        await self.event("MissSchedule", "Missed scheduled time to start a job: "
                         f"{rfc1123z(missed)}", warning=True)

    async def _start(self, scheduled: datetime) -> Outcome | None:
        """Run the Job of ``scheduled`` if nothing stops it; an outcome only on failure."""
        cj = self.cj
        name = job_name(cj, scheduled)
        if (any(r.name == name for r in self.status.active or [])
                or self.status.last_schedule_time == rfc3339_utc(scheduled)):
            return None
        if cj.spec.concurrency_policy == "Forbid" and self.status.active:
            await self.event("JobAlreadyActive", "Not starting job because prior execution is "
                             "running and concurrency policy is Forbid")
            return None
        if cj.spec.concurrency_policy == "Replace":
            for ref in list(self.status.active or []):
                await self._delete(ref.name or "", ref.uid)
        return await self._create(scheduled)

    async def _create(self, scheduled: datetime) -> Outcome | None:
        job = job_for(self.cj, scheduled)
        name = job.metadata.name or ""
        try:
            made = await self.c.api.create("jobs", job.to_wire())
            self.log.info("job_created", job=name, scheduled=rfc3339_utc(scheduled))
            await self.event("SuccessfulCreate", f"Created job {name}")
        except AlreadyExists:
            made = await self.c.api.get("jobs", self.namespace, name)
            ref = Job.model_validate(made).metadata.controller_ref()
            if ref is None or ref.uid != self.cj.metadata.uid:
                return None  # someone else's Job: Kubernetes leaves it alone
            if made["metadata"]["uid"] in self._active_uids():
                return None
            self.log.info("job_already_exists", job=name)
        except PeapodError as exc:
            self.log.warning("job_create_failed", job=name, error=exc.message)
            await self.event("FailedCreate", f"Error creating job: {exc.message}", warning=True)
            return RetryAfter(RETRY_SECONDS)
        meta = made["metadata"]
        self.status.active = [*(self.status.active or []), ObjectReference(
            kind="Job", namespace=self.namespace, name=meta["name"], uid=meta["uid"],
            api_version="batch/v1", resource_version=meta.get("resourceVersion"))]
        self.status.last_schedule_time = rfc3339_utc(scheduled)
        self.changed = True
        return None

    async def _delete(self, name: str, uid: str | None) -> bool:
        """Kubernetes' ``deleteJob``: the Job (its pods follow by garbage collection), then
        its reference in ``active``."""
        try:
            await self.c.api.delete("jobs", self.namespace, name, policy="Background")
        except NotFound:
            pass  # already gone: only the reference is left to drop
        except PeapodError as exc:
            await self.event("FailedDelete", f"Deleted job: {exc.message}", warning=True)
            return False
        self.log.info("job_deleted", job=name)
        self._drop_active(uid)
        await self.event("SuccessfulDelete", f"Deleted job {name}")
        return True

    async def clean_up_history(self) -> bool:
        deleted = False
        for job in jobs_beyond_history(self.cj, self.jobs):
            deleted = await self._delete(job.metadata.name or "", job.metadata.uid) or deleted
        return deleted
