"""Job, as Kubernetes' batch/v1 defines it, limited to what peapod runs.

A Job runs pods until ``completions`` of them succeeded, ``parallelism`` at
a time, and gives up after ``backoffLimit`` failures or
``activeDeadlineSeconds``; ``ttlSecondsAfterFinished`` removes it (and, by
garbage collection, its pods) that long after it finished. As in
Kubernetes, the apiserver gives it a selector on its own uid
(``batch.kubernetes.io/controller-uid``) and labels its template with it
and with ``batch.kubernetes.io/job-name``; a manifest may not bring its own
selector (peapod has no ``manualSelector``). ``completionMode: Indexed``,
``suspend``, ``podFailurePolicy`` and the rest are absent, so a manifest
using them is refused with the field's path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.apps import PodTemplateSpec
from peapod.api.base import Model
from peapod.api.labelselector import LabelSelector
from peapod.api.meta import ObjectMeta
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


class JobStatus(Model):
    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
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
    problems = meta_problems(job.metadata, namespaced=True)
    template = job.spec.template
    problems += [f"spec.template.{p}" for p in pod_spec_problems(template.spec)]
    if template.spec.restart_policy not in ("OnFailure", "Never"):
        problems.append(f'spec.template.spec.restartPolicy: Required value: valid values: '
                        f'"OnFailure", "Never" (got "{template.spec.restart_policy}")')
    for key in ("name", "namespace", "generate_name"):
        if getattr(template.metadata, key):
            problems.append(f"spec.template.metadata.{key}: Forbidden: set by the controller")
    if template.spec.node_name:
        problems.append("spec.template.spec.nodeName: Forbidden: peapod schedules a "
                        "controller's pods; use spec.template.spec.nodeSelector")
    labels_only = ObjectMeta(name="template", labels=template.metadata.labels)
    problems += [f"spec.template.{p}" for p in meta_problems(labels_only, namespaced=True)]
    return problems
