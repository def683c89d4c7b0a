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

A pod's end is counted once, even if the pod is deleted before the Job
finishes (Kubernetes' ``trackJobStatusAndRemoveFinalizers``): each pod is
created with the finalizer ``batch.kubernetes.io/job-tracking``; a pod that
ended (Succeeded, Failed, or deleted before it succeeded) and still holds it
has its uid written to ``status.uncountedTerminatedPods`` first, then loses
the finalizer (``JobPlan.release``); once its pod is seen without the
finalizer (or gone) a uid moves from that list into ``succeeded`` or
``failed``. A pod without the finalizer was counted already. The Job gets
its Complete or Failed condition only when that list is empty, so its
counts are final when it finishes; afterwards its pods only lose the
finalizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peapod.api import Pod, parse_rfc3339
from peapod.api.batch import Job, JobCondition, JobStatus, UncountedTerminatedPods
from peapod.api.meta import JOB_TRACKING_FINALIZER
from peapod.controllers.claiming import is_active, pods_to_delete


@dataclass
class JobPlan:
    create: int = 0
    delete: list[Pod] = field(default_factory=list)
    release: list[Pod] = field(default_factory=list)  # remove their finalizer, after ``status``
    status: JobStatus = field(default_factory=JobStatus)
    recheck_in: float | None = None  # seconds until a deadline or the TTL is due


def _phase(pod: Pod) -> str | None:
    return pod.status.phase if pod.status else None


def holds_finalizer(pod: Pod | None) -> bool:
    return pod is not None and JOB_TRACKING_FINALIZER in (pod.metadata.finalizers or [])


@dataclass
class Tally:
    """The Job's ends: counted for good, and recorded (uids) while their finalizers go."""

    succeeded: int
    failed: int
    uncounted_succeeded: list[str]
    uncounted_failed: list[str]
    release: list[Pod]

    def uncounted(self) -> UncountedTerminatedPods | None:
        if not (self.uncounted_succeeded or self.uncounted_failed):
            return None
        return UncountedTerminatedPods(succeeded=self.uncounted_succeeded or None,
                                       failed=self.uncounted_failed or None)


def tally(job: Job, pods: list[Pod]) -> Tally:
    previous = job.status or JobStatus()
    recorded = previous.uncounted_terminated_pods or UncountedTerminatedPods()
    by_uid = {p.metadata.uid: p for p in pods}
    result = Tally(previous.succeeded or 0, previous.failed or 0, [], [], [])
    # a recorded uid whose pod lost the finalizer (or is gone) is counted for good
    for uid in recorded.succeeded or []:
        if holds_finalizer(by_uid.get(uid)):
            result.uncounted_succeeded.append(uid)
        else:
            result.succeeded += 1
    for uid in recorded.failed or []:
        if holds_finalizer(by_uid.get(uid)):
            result.uncounted_failed.append(uid)
        else:
            result.failed += 1
    finished = job.finished() is not None
    for pod in pods:
        uid = pod.metadata.uid or ""
        if not holds_finalizer(pod):
            continue
        if uid in result.uncounted_succeeded or uid in result.uncounted_failed or finished:
            result.release.append(pod)
        elif _phase(pod) == "Succeeded":
            result.uncounted_succeeded.append(uid)
            result.release.append(pod)
        elif _phase(pod) == "Failed" or pod.metadata.deletion_timestamp:
            result.uncounted_failed.append(uid)  # deleted before it succeeded: a failure
            result.release.append(pod)
    return result


def failures(job: Job, pods: list[Pod], ended: Tally) -> int:
    failed = ended.failed + len(ended.uncounted_failed)
    if job.spec.template.spec.restart_policy == "OnFailure":
        failed += sum(c.restart_count for p in pods if p.status
                      for c in p.status.container_statuses or [])
    return failed


def plan_job(job: Job, pods: list[Pod], *, now: float, now_text: str) -> JobPlan:
    plan = JobPlan()
    active = [p for p in pods if is_active(p)]
    ended = tally(job, pods)
    plan.release = ended.release
    succeeded = ended.succeeded + len(ended.uncounted_succeeded)
    failed = failures(job, pods, ended)
    previous = job.status or JobStatus()
    status = JobStatus(active=len(active) or None, succeeded=ended.succeeded or None,
                       failed=ended.failed or None, uncounted_terminated_pods=ended.uncounted(),
                       start_time=previous.start_time or now_text,
                       completion_time=previous.completion_time,
                       conditions=previous.conditions)
    plan.status = status
    if job.finished() is not None:
        # a finished Job's counts are final: deleting its pods (drain, people) leaves
        # "1/1" as it is; only what it recorded before it finished is still counted
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
    if ending is not None and status.uncounted_terminated_pods is not None:
        return plan  # it ends once the ends it recorded are counted: a reconcile away
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
