"""When a CronJob should run, and what it runs: pure functions over the CronJob and the time.

Kubernetes' rules (``pkg/controller/cronjob/utils.go``):

* the earliest time considered is ``status.lastScheduleTime``, else the
  CronJob's creation; with ``startingDeadlineSeconds``, never earlier than
  that many seconds ago;
* of the schedule's times after it and not after now, only the most recent
  runs (the others are missed); more than 100 missed is the warning
  ``TooManyMissedTimes``, and an unmet time older than
  ``startingDeadlineSeconds`` is ``MissSchedule`` instead of a run;
* the Job for a time is named ``<cronjob>-<minutes since the epoch>``, so
  whoever makes it twice gets ``AlreadyExists``: a restart never doubles a run;
* the controller looks again at the next time of the schedule, plus 100 ms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from peapod.api.base import parse_rfc3339
from peapod.api.batch import SCHEDULED_TIMESTAMP, CronJob, Job, load_time_zone
from peapod.api.cron import CronSchedule
from peapod.api.meta import ObjectMeta
from peapod.controllers.claiming import controller_reference

MANY_MISSED = 100
NEXT_SCHEDULE_DELTA = 0.1  # seconds after the scheduled time (NTP skew), as Kubernetes
TOO_MANY_MISSED = ("too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                   "or check clock skew")


def local_zone() -> tzinfo:
    """The controller manager's own zone, which Kubernetes uses for a CronJob without
    ``timeZone``: ``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return load_time_zone(name)
        except ValueError:
            return UTC
    localtime = Path("/etc/localtime")
    if localtime.exists():
        with localtime.open("rb") as tzfile:
            return ZoneInfo.from_file(tzfile, key="localtime")
    return UTC


def zone_of(cj: CronJob, default: tzinfo) -> tzinfo:
    """The zone the schedule is read in; ValueError with Go's message if unknown."""
    return load_time_zone(cj.spec.time_zone) if cj.spec.time_zone else default


@dataclass(frozen=True)
class Recent:
    earliest: datetime
    most_recent: datetime | None
    missed: int  # 0: none, else an estimate of how many times were missed


def most_recent_schedule_time(cj: CronJob, now: datetime, schedule: CronSchedule, zone: tzinfo,
                              *, with_deadline: bool) -> Recent:
    """Kubernetes' ``mostRecentScheduleTime``; ValueError for a schedule that never fires."""
    status = cj.status
    last = status.last_schedule_time if status else None
    earliest = parse_rfc3339(last or cj.metadata.creation_timestamp or _rfc3339(now))
    deadline = cj.spec.starting_deadline_seconds
    if with_deadline and deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=deadline))
    t1 = schedule.next(earliest, zone)
    t2 = schedule.next(t1, zone) if t1 is not None else None
    if t1 is None or t2 is None:
        raise ValueError("time difference between two schedules is less than 1 second")
    if now < t1:
        return Recent(earliest, None, 0)
    if now < t2:
        return Recent(earliest, t1, 0)
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    most_recent: datetime | None = None
    t: datetime | None = schedule.next(t1 + timedelta(seconds=(missed - 2) * between), zone)
    while t is not None and t <= now:
        most_recent, t = t, schedule.next(t, zone)
    return Recent(earliest, most_recent, missed)


def requeue_in(cj: CronJob, now: datetime, schedule: CronSchedule, zone: tzinfo) -> float:
    """Kubernetes' ``nextScheduleTimeDuration``: seconds until the next look."""
    try:
        recent = most_recent_schedule_time(cj, now, schedule, zone, with_deadline=False)
        base = recent.most_recent or (recent.earliest if not recent.missed else now)
    except ValueError:
        base = now
    following = schedule.next(base, zone)
    if following is None:
        return 3600.0  # never again within five years: look once an hour in case it changes
    return max((following - now).total_seconds(), 0.0) + NEXT_SCHEDULE_DELTA


def job_name(cj: CronJob, scheduled: datetime) -> str:
    return f"{cj.metadata.name}-{int(scheduled.timestamp()) // 60}"


def _rfc3339(t: datetime) -> str:
    """Go's RFC 3339 at seconds: ``Z`` for a zero offset, else ``+hh:mm``."""
    text = t.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rfc3339_utc(t: datetime) -> str:
    return _rfc3339(t.astimezone(UTC))


def rfc1123z(t: datetime) -> str:
    """Go's ``time.RFC1123Z`` in UTC, as the MissSchedule event prints the time."""
    return t.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def job_for(cj: CronJob, scheduled: datetime) -> Job:
    """Kubernetes' ``getJobFromTemplate2``: the template's labels, annotations and spec, the
    deterministic name, the controller reference and the scheduled time (in ``timeZone``,
    else UTC) as an annotation."""
    template = cj.spec.job_template
    meta = cj.metadata
    annotations = dict(template.metadata.annotations or {})
    annotations[SCHEDULED_TIMESTAMP] = _rfc3339(scheduled.astimezone(
        load_time_zone(cj.spec.time_zone)))
    return Job(metadata=ObjectMeta(
        name=job_name(cj, scheduled), namespace=meta.namespace or "default",
        labels=dict(template.metadata.labels or {}) or None, annotations=annotations,
        owner_references=[controller_reference("CronJob", meta.name or "", meta.uid or "")]),
        spec=template.spec.model_copy(deep=True))


def finished_kind(job: Job) -> str | None:
    """"Complete" or "Failed" for a finished Job, None while it runs."""
    cond = job.finished()
    return cond.type if cond is not None else None


def _start_key(job: Job) -> tuple[int, float, str]:
    """Kubernetes' ``byJobStartTime``: started first (earliest first), then by name."""
    start = job.status.start_time if job.status else None
    if start is None:
        return (1, 0.0, job.metadata.name or "")
    return (0, parse_rfc3339(start).timestamp(), job.metadata.name or "")


def jobs_beyond_history(cj: CronJob, jobs: list[Job]) -> list[Job]:
    """The oldest finished Jobs beyond ``successfulJobsHistoryLimit`` and
    ``failedJobsHistoryLimit``, the ones to delete."""
    victims: list[Job] = []
    for kind, limit in (("Complete", cj.spec.successful_jobs_history_limit),
                        ("Failed", cj.spec.failed_jobs_history_limit)):
        done = sorted((j for j in jobs if finished_kind(j) == kind
                       and not j.metadata.deletion_timestamp), key=_start_key)
        victims += done[:max(len(done) - limit, 0)]
    return victims


def last_successful_time(cj: CronJob, jobs: list[Job]) -> str | None:
    """The latest ``completionTime`` of a Job that succeeded, never earlier than the one the
    status already has."""
    known = cj.status.last_successful_time if cj.status else None
    best = parse_rfc3339(known) if known else None
    for job in jobs:
        completed = job.status.completion_time if job.status else None
        if finished_kind(job) == "Complete" and completed:
            when = parse_rfc3339(completed)
            best = when if best is None or when > best else best
    return rfc3339_utc(best) if best is not None else None
