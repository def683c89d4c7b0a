"""What a Job should do next: pure functions over the Job, its pods and the time.

Kubernetes' rules (``pkg/controller/job``), for non-indexed Jobs:

* a pod that ``Succeeded`` counts toward ``completions``; one that
  ``Failed`` (or, with ``restartPolicy: OnFailure``, each container
  restart) toward ``backoffLimit``;
* the Job fails with ``BackoffLimitExceeded`` once failures exceed
  ``backoffLimit``, with ``DeadlineExceeded`` once ``activeDeadlineSeconds``
  passed since ``startTime``; its running pods are then deleted;
* it completes once ``completions`` pods succeeded;
* otherwise ``min(parallelism, completions - succeeded)`` pods run at
  once: missing ones are created, extras deleted (newest first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peapod.api import Pod, parse_rfc3339
from peapod.api.batch import Job, JobCondition, JobStatus
from peapod.controllers.claiming import is_active, pods_to_delete


@dataclass
class JobPlan:
    create: int = 0
    delete: list[Pod] = field(default_factory=list)
    status: JobStatus = field(default_factory=JobStatus)
    recheck_in: float | None = None  # seconds until a deadline or the TTL is due


def _phase(pod: Pod) -> str | None:
    return pod.status.phase if pod.status else None


def failures(job: Job, pods: list[Pod]) -> int:
    failed = sum(1 for p in pods if _phase(p) == "Failed")
    if job.spec.template.spec.restart_policy == "OnFailure":
        failed += sum(c.restart_count for p in pods if p.status
                      for c in p.status.container_statuses or [])
    return failed


def plan_job(job: Job, pods: list[Pod], *, now: float, now_text: str) -> JobPlan:
    plan = JobPlan()
    active = [p for p in pods if is_active(p)]
    succeeded = sum(1 for p in pods if _phase(p) == "Succeeded")
    failed = failures(job, pods)
    previous = job.status or JobStatus()
    status = JobStatus(active=len(active) or None, succeeded=succeeded or None,
                       failed=failed or None, start_time=previous.start_time or now_text,
                       completion_time=previous.completion_time,
                       conditions=previous.conditions)
    plan.status = status
    if job.finished() is not None:
        # a finished Job's counts are final: deleting its pods (drain, people) leaves
        # "1/1" as it is, as Kubernetes' finalizer-tracked counts do
        status.succeeded, status.failed = previous.succeeded, previous.failed
        plan.delete = active
        return plan
    started = parse_rfc3339(status.start_time or now_text).timestamp()
    deadline = job.spec.active_deadline_seconds
    ending: tuple[str, str | None, str | None] | None = None
    if failed > job.spec.backoff_limit:
        ending = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    elif deadline is not None and now - started >= deadline:
        ending = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    elif succeeded >= job.spec.completions:
        ending = ("Complete", None, None)
    if ending is not None:
        kind, reason, message = ending
        status.conditions = [JobCondition(type=kind, status="True", reason=reason,  # type: ignore[arg-type]
                                          message=message, last_probe_time=now_text,
                                          last_transition_time=now_text)]
        if kind == "Complete":
            status.completion_time = now_text
        plan.delete = active
        status.active = None
        return plan
    want = min(job.spec.parallelism, job.spec.completions - succeeded)
    if len(active) < want:
        plan.create = want - len(active)
    elif len(active) > want:
        plan.delete = pods_to_delete(active, len(active) - want)
    if deadline is not None:
        plan.recheck_in = max(started + deadline - now, 0.0)
    return plan


def ttl_due_in(job: Job, now: float) -> float | None:
    """Seconds until a finished Job's TTL runs out (0: now), None if it has none."""
    finished = job.finished()
    ttl = job.spec.ttl_seconds_after_finished
    if finished is None or ttl is None:
        return None
    since = finished.last_transition_time or (job.status.completion_time if job.status else None)
    if since is None:
        return 0.0
    return max(parse_rfc3339(since).timestamp() + ttl - now, 0.0)
