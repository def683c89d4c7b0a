"""A Job's next step: completions, parallelism, backoffLimit, deadline and TTL, without a cluster."""

from __future__ import annotations

from peapod.api import Pod
from peapod.api.batch import Job
from peapod.api.meta import JOB_TRACKING_FINALIZER as TRACKING
from peapod.controllers.jobs import plan_job, ttl_due_in

START = "2026-01-01T00:00:00Z"
T0 = 1767225600.0  # START in epoch seconds


def job(**spec) -> Job:
    return Job.model_validate({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "j"},
        "spec": {"template": {"spec": {"restartPolicy": spec.pop("policy", "Never"),
                                       "containers": [{"name": "c", "image": "busybox"}]}},
                 **spec},
        "status": {"startTime": START}})


def counted(pi: Job, **counts: int) -> Job:
    """``pi`` with ends already counted in its status (their pods lost the finalizer)."""
    pi.status = pi.status.model_copy(update=counts)
    return pi


def pod(name: str, phase: str, restarts: int = 0, *, tracked: bool = True,
        deleting: bool = False) -> Pod:
    """A Job's pod; ``tracked``: it still holds the job-tracking finalizer."""
    return Pod.model_validate({"metadata": {"name": name, "uid": name,
                                            "creationTimestamp": START,
                                            "finalizers": [TRACKING] if tracked else None,
                                            "deletionTimestamp": START if deleting else None},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                               "status": {"phase": phase, "containerStatuses": [
                                   {"name": "c", "restartCount": restarts}]}})


def test_parallelism_and_completions_decide_how_many_run():
    plan = plan_job(job(completions=5, parallelism=2), [], now=T0, now_text=START)
    assert plan.create == 2
    done = [pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c", "Succeeded"),
            pod("d", "Succeeded"), pod("e", "Running")]
    plan = plan_job(job(completions=5, parallelism=2), done, now=T0, now_text=START)
    assert plan.create == 0 and plan.delete == []  # one left to do, and it runs
    assert (plan.status.succeeded, plan.status.active) == (None, 1)  # recorded, not counted yet
    assert plan.status.uncounted_terminated_pods.succeeded == ["a", "b", "c", "d"]
    assert [p.metadata.name for p in plan.release] == ["a", "b", "c", "d"]


def test_an_end_is_recorded_then_counted_once_its_finalizer_is_gone():
    """Kubernetes' trackJobStatusAndRemoveFinalizers: uid first, finalizer next, count last."""
    pi = job(completions=3)
    pi.status = plan_job(pi, [pod("a", "Succeeded"), pod("b", "Failed")], now=T0,
                         now_text=START).status
    uncounted = pi.status.uncounted_terminated_pods
    assert (uncounted.succeeded, uncounted.failed) == (["a"], ["b"])
    # a's finalizer removed (it stays), b's removed and the pod deleted: both counted
    after = plan_job(pi, [pod("a", "Succeeded", tracked=False)], now=T0, now_text=START)
    assert (after.status.succeeded, after.status.failed) == (1, 1)
    assert after.status.uncounted_terminated_pods is None and after.release == []
    assert after.create == 1  # the first success is not run again
    pi.status = after.status
    again = plan_job(pi, [], now=T0, now_text=START)  # a deleted too: nothing lost
    assert (again.status.succeeded, again.status.failed, again.create) == (1, 1, 1)


def test_a_pod_deleted_before_it_succeeded_is_a_failure_and_a_finished_job_counts_no_more():
    plan = plan_job(job(backoffLimit=0), [pod("a", "Running", deleting=True)], now=T0,
                    now_text=START)
    assert plan.status.uncounted_terminated_pods.failed == ["a"]
    assert not plan.status.conditions  # it fails once the failure is counted
    failed = job(backoffLimit=0)
    failed.status = plan.status
    plan = plan_job(failed, [], now=T0, now_text=START)
    assert plan.status.failed == 1 and plan.status.conditions[0].reason == "BackoffLimitExceeded"
    failed.status = plan.status
    late = plan_job(failed, [pod("b", "Succeeded")], now=T0, now_text=START)
    assert [p.metadata.name for p in late.release] == ["b"]
    assert (late.status.succeeded, late.status.uncounted_terminated_pods) == (None, None)


def test_completion_sets_the_condition_and_time():
    plan = plan_job(job(completions=1), [pod("a", "Succeeded", tracked=False)], now=T0 + 5,
                    now_text="2026-01-01T00:00:05Z")
    assert not plan.status.conditions  # a pod without the finalizer was counted already
    plan = plan_job(counted(job(completions=1), succeeded=1),
                    [pod("a", "Succeeded", tracked=False)], now=T0 + 5,
                    now_text="2026-01-01T00:00:05Z")
    [cond] = plan.status.conditions or []
    assert (cond.type, cond.status) == ("Complete", "True")
    assert plan.status.completion_time == "2026-01-01T00:00:05Z"


def test_a_finished_jobs_counts_stay_when_its_pods_are_deleted():
    """Found with `peapod drain`: a Complete job's pods evicted made it `Complete 0/1`."""
    done = counted(job(completions=1), succeeded=1)
    done.status = plan_job(done, [pod("a", "Succeeded", tracked=False)], now=T0,
                           now_text=START).status
    assert done.status.succeeded == 1 and done.finished()
    after = plan_job(done, [], now=T0 + 60, now_text=START).status
    assert (after.succeeded, after.conditions[0].type, after.completion_time) == (
        1, "Complete", done.status.completion_time)


def test_failures_beyond_the_backoff_limit_fail_the_job_and_stop_its_pods():
    pods = [pod("a", "Failed", tracked=False), pod("b", "Failed", tracked=False),
            pod("c", "Running")]
    plan = plan_job(counted(job(backoffLimit=1), failed=2), pods, now=T0, now_text=START)
    [cond] = plan.status.conditions or []
    assert (cond.type, cond.reason) == ("Failed", "BackoffLimitExceeded")
    assert [p.metadata.name for p in plan.delete] == ["c"]
    restarts = [pod("a", "Running", restarts=3)]
    plan = plan_job(job(backoffLimit=2, policy="OnFailure"), restarts, now=T0, now_text=START)
    assert plan.status.conditions and plan.status.conditions[0].reason == "BackoffLimitExceeded"


def test_the_deadline_is_a_timer_then_a_failure():
    plan = plan_job(job(activeDeadlineSeconds=60), [pod("a", "Running")], now=T0 + 20,
                    now_text=START)
    assert plan.recheck_in == 40 and not plan.status.conditions
    plan = plan_job(job(activeDeadlineSeconds=60), [pod("a", "Running")], now=T0 + 61,
                    now_text=START)
    assert plan.status.conditions and plan.status.conditions[0].reason == "DeadlineExceeded"


def test_ttl_counts_from_when_the_job_finished():
    finished = counted(job(ttlSecondsAfterFinished=30), succeeded=1)
    finished.status.conditions = plan_job(finished, [pod("a", "Succeeded", tracked=False)],
                                          now=T0, now_text=START).status.conditions
    assert ttl_due_in(finished, T0 + 10) == 20
    assert ttl_due_in(finished, T0 + 31) == 0
    assert ttl_due_in(job(), T0) is None
