"""Job, as Kubernetes' batch/v1 defines it, limited to what peapod runs.

A Job runs pods until ``completions`` of them succeeded, ``parallelism`` at
a time, and gives up after ``backoffLimit`` failures or
``activeDeadlineSeconds``; ``ttlSecondsAfterFinished`` removes it (and, by
garbage collection, its pods) that long after it finished. As in
Kubernetes, the apiserver gives it a selector on its own uid
(``batch.kubernetes.io/controller-uid``) and labels its template with it
and with ``batch.kubernetes.io/job-name``; a manifest may not bring its own
selector (peapod has no ``manualSelector``). Each pod carries the finalizer
``batch.kubernetes.io/job-tracking`` until the controller has recorded its
end (``status.uncountedTerminatedPods``, then ``succeeded``/``failed``), so
a finished pod deleted early still counts. ``completionMode: Indexed``,
``suspend``, ``podFailurePolicy`` and the rest are absent, so a manifest
using them is refused with the field's path.

A CronJob makes a Job from ``spec.jobTemplate`` at each time of its
``schedule`` (``peapod.api.cron``: robfig/cron's grammar, as Kubernetes),
in ``timeZone`` if given; validation is Kubernetes' ``ValidateCronJob``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from peapod.api.apps import PodTemplateSpec
from peapod.api.base import Model
from peapod.api.cron import CronError, parse_schedule
from peapod.api.labelselector import LabelSelector
from peapod.api.meta import ObjectMeta, ObjectReference
from peapod.api.validation import meta_problems, pod_spec_problems

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_LABELS = ("controller-uid", "job-name")  # Kubernetes sets both spellings


class JobSpec(Model):
    parallelism: int = Field(default=1, ge=0)
    completions: int = Field(default=1, ge=0)
    backoff_limit: int = Field(default=6, ge=0)
    active_deadline_seconds: int | None = Field(default=None, gt=0)
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    selector: LabelSelector | None = None
    template: PodTemplateSpec


class JobCondition(Model):
    type: Literal["Complete", "Failed"]
    status: Literal["True", "False", "Unknown"]
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class UncountedTerminatedPods(Model):
    """The uids of finished pods whose finalizer the controller is removing, not yet in
    ``succeeded``/``failed``."""

    succeeded: list[str] | None = None
    failed: list[str] | None = None


class JobStatus(Model):
    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    uncounted_terminated_pods: UncountedTerminatedPods | None = None
    start_time: str | None = None
    completion_time: str | None = None
    conditions: list[JobCondition] | None = None


class Job(Model):
    api_version: Literal["batch/v1"] = "batch/v1"
    kind: Literal["Job"] = "Job"
    metadata: ObjectMeta
    spec: JobSpec
    status: JobStatus | None = None

    def finished(self) -> JobCondition | None:
        for cond in (self.status.conditions if self.status else None) or []:
            if cond.status == "True":
                return cond
        return None


def job_problems(job: Job) -> list[str]:
    return meta_problems(job.metadata, namespaced=True) + job_spec_problems(job.spec, "spec")


def job_spec_problems(spec: JobSpec, path: str) -> list[str]:
    """A Job's spec (``path`` is ``spec``, or ``spec.jobTemplate.spec`` in a CronJob)."""
    template = spec.template
    problems = [f"{path}.template.{p}" for p in pod_spec_problems(template.spec)]
    if template.spec.restart_policy not in ("OnFailure", "Never"):
        problems.append(f'{path}.template.spec.restartPolicy: Required value: valid values: '
                        f'"OnFailure", "Never" (got "{template.spec.restart_policy}")')
    for key in ("name", "namespace", "generate_name"):
        if getattr(template.metadata, key):
            problems.append(f"{path}.template.metadata.{key}: Forbidden: set by the controller")
    if template.spec.node_name:
        problems.append(f"{path}.template.spec.nodeName: Forbidden: peapod schedules a "
                        "controller's pods; use spec.template.spec.nodeSelector")
    labels_only = ObjectMeta(name="template", labels=template.metadata.labels)
    problems += [f"{path}.template.{p}" for p in meta_problems(labels_only, namespaced=True)]
    return problems


# -- CronJob ---------------------------------------------------------------------------

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
MAX_CRONJOB_NAME = 52  # a Job's name adds "-" and the scheduled minute (11 characters)
_TIME_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


class JobTemplateSpec(Model):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec


class CronJobSpec(Model):
    schedule: str
    time_zone: str | None = None
    starting_deadline_seconds: int | None = None
    concurrency_policy: str = "Allow"
    suspend: bool = False
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 1
    job_template: JobTemplateSpec


class CronJobStatus(Model):
    active: list[ObjectReference] | None = None
    last_schedule_time: str | None = None
    last_successful_time: str | None = None


class CronJob(Model):
    api_version: Literal["batch/v1"] = "batch/v1"
    kind: Literal["CronJob"] = "CronJob"
    metadata: ObjectMeta
    spec: CronJobSpec
    status: CronJobStatus | None = None


def load_time_zone(name: str | None) -> tzinfo:
    """Go's ``time.LoadLocation``: None and "" are UTC; an unknown name raises ValueError
    with Go's message."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


def time_zone_problems(name: str | None) -> list[str]:
    """Kubernetes' ``validateTimeZone``: an IANA name the host's tz database knows, or the
    ``tzdata`` package (a dependency, for hosts without one)."""
    if name is None:
        return []
    where = f"spec.timeZone: Invalid value: {json.dumps(name)}"
    if not name:
        return [f"{where}: timeZone must be nil or non-empty string"]
    for part in name.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.match(part):
            return [f"{where}: unknown time zone {name}"]
    if name.lower() == "local":
        return [f"{where}: timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones"]
    try:
        load_time_zone(name)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    return []


def schedule_problems(schedule: str) -> list[str]:
    """Kubernetes' ``validateScheduleFormat`` for a new object: robfig's parser, no TZ."""
    if not schedule:
        return ["spec.schedule: Required value"]
    where = f"spec.schedule: Invalid value: {json.dumps(schedule)}"
    if "TZ" in schedule:  # robfig would take a TZ= or CRON_TZ= prefix; Kubernetes refuses it
        return [f"{where}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]
    try:
        parse_schedule(schedule)
    except CronError as exc:
        return [f"{where}: {exc}"]
    return []


def cronjob_problems(cj: CronJob) -> list[str]:
    """Kubernetes' ``ValidateCronJob``, in its words."""
    problems = meta_problems(cj.metadata, namespaced=True)
    name = cj.metadata.name or ""
    if len(name) > MAX_CRONJOB_NAME:
        problems.append(f"metadata.name: Invalid value: {json.dumps(name)}: must be no more "
                        f"than {MAX_CRONJOB_NAME} characters")
    spec = cj.spec
    problems += schedule_problems(spec.schedule)
    problems += time_zone_problems(spec.time_zone)
    for field, value in (("startingDeadlineSeconds", spec.starting_deadline_seconds),
                         ("successfulJobsHistoryLimit", spec.successful_jobs_history_limit),
                         ("failedJobsHistoryLimit", spec.failed_jobs_history_limit)):
        if value is not None and value < 0:
            problems.append(f"spec.{field}: Invalid value: {value}: must be greater than or "
                            "equal to 0")
    if not spec.concurrency_policy:
        problems.append("spec.concurrencyPolicy: Required value")
    elif spec.concurrency_policy not in CONCURRENCY_POLICIES:
        problems.append(f"spec.concurrencyPolicy: Unsupported value: "
                        f"{json.dumps(spec.concurrency_policy)}: supported values: "
                        + ", ".join(f'"{p}"' for p in CONCURRENCY_POLICIES))
    template = spec.job_template
    for key in ("name", "namespace", "generate_name"):
        if getattr(template.metadata, key):
            problems.append(f"spec.jobTemplate.metadata.{key}: Forbidden: set by the controller")
    template_meta = ObjectMeta(name="template", labels=template.metadata.labels,
                               annotations=template.metadata.annotations)
    problems += [f"spec.jobTemplate.{p}" for p in meta_problems(template_meta, namespaced=True)]
    if template.spec.selector is not None:
        problems.append("spec.jobTemplate.spec.selector: Invalid value: "
                        f"{template.spec.selector.to_query()!r}: `selector` not auto-generated "
                        "(peapod has no manualSelector)")
    problems += job_spec_problems(template.spec, "spec.jobTemplate.spec")
    return problems
