"""Jobs on real podman with two kubelets: completions in parallel, a backoff limit, a TTL,
and ends counted through the job-tracking finalizer when pods are deleted early.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py``.
"""

from __future__ import annotations

import json

import pytest

from peapod.api.meta import JOB_TRACKING_FINALIZER as TRACKING
from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.replay import read_all
from peapod.errors import Invalid, NotFound
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    fleet,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def job(name: str, script: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "work", "image": IMAGE, "command": ["sh", "-c", script]}]}}}}


async def job_status(admin, name: str) -> dict:
    got = await request(admin, s.api("jobs", "get"), {"namespace": "default", "name": name})
    return got.get("status") or {}


async def condition(admin, name: str, type_: str) -> dict | None:
    st = await job_status(admin, name)
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), None)


async def test_completions_backoff_and_ttl(fleet, tmp_path):  # noqa: F811
    admin = fleet["admin"]
    made = await request(admin, s.api("jobs", "create"), {"object": job(
        "work", "sleep 1", completions=3, parallelism=2)})
    uid = made["metadata"]["uid"]
    assert made["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert made["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"
    await eventually(lambda: condition(admin, "work", "Complete"), "work complete", timeout=120)
    st = await job_status(admin, "work")
    assert st["succeeded"] == 3 and "active" not in st and st["completionTime"]
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default",
                                                        "labelSelector": "job-name=work"})
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    table = await cli_for(fleet, tmp_path)("get", "jobs")
    assert table.out.split()[:8] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "work",
                                     "Complete", "3/3"], table.out

    await request(admin, s.api("jobs", "create"), {"object": job("broken", "exit 3",
                                                                  backoffLimit=1)})
    failed = await eventually(lambda: condition(admin, "broken", "Failed"), "broken failed",
                              timeout=120)
    assert failed["reason"] == "BackoffLimitExceeded"
    assert (await job_status(admin, "broken"))["failed"] == 2

    await request(admin, s.api("jobs", "create"), {"object": job(
        "brief", "true", ttlSecondsAfterFinished=0)})

    async def removed() -> bool:
        try:
            await request(admin, s.api("jobs", "get"), {"namespace": "default", "name": "brief"})
        except NotFound:
            pods = await request(admin, s.api("pods", "list"), {
                "namespace": "default", "labelSelector": "job-name=brief"})
            return not pods
        return False
    await eventually(removed, "the finished Job and its pod removed after its TTL", timeout=120)

    with pytest.raises(Invalid, match="field is immutable"):
        current = await request(admin, s.api("jobs", "get"), {"namespace": "default",
                                                              "name": "work"})
        current["spec"]["completions"] = 5
        await request(admin, s.api("jobs", "update"), {"object": current})
    for name in ("work", "broken"):
        await request(admin, s.api("jobs", "delete"), {"namespace": "default", "name": name})


async def job_pods(admin, name: str) -> list[dict]:
    return await request(admin, s.api("pods", "list"), {
        "namespace": "default", "labelSelector": f"job-name={name}"})


async def pods_made(admin, name: str) -> int:
    """How many pods the Job controller created for the Job ``name`` (its events say)."""
    events = await read_all(jetstream(admin), stream=s.EVENTS_STREAM,
                            subject=s.event("default", "Job", name))
    return sum(1 for m in events if json.loads(m.data)["reason"] == "SuccessfulCreate")


async def delete_first_that_ended(admin, name: str, phase: str) -> str:
    """Wait for a pod of the Job to reach ``phase``, delete it at once (grace 0), and return
    its uid."""
    async def ended() -> dict | None:
        return next((p for p in await job_pods(admin, name)
                     if (p.get("status") or {}).get("phase") == phase), None)
    pod = await eventually(ended, f"a pod of {name} {phase}", timeout=120)
    await request(admin, s.api("pods", "delete"), {
        "namespace": "default", "name": pod["metadata"]["name"], "gracePeriodSeconds": 0})
    return pod["metadata"]["uid"]


async def test_ended_pods_count_even_when_deleted_before_the_job_finishes(fleet):  # noqa: F811
    """The finalizer batch.kubernetes.io/job-tracking and status.uncountedTerminatedPods: a
    success or failure deleted early is counted once, no pod is made twice, and neither a
    pod nor a Job's deletion waits on the finalizer."""
    admin = fleet["admin"]
    await request(admin, s.api("jobs", "create"), {"object": job(
        "twice", "sleep 2", completions=2, parallelism=1)})
    first = await delete_first_that_ended(admin, "twice", "Succeeded")

    async def second_running() -> list[dict]:
        pods = await job_pods(admin, "twice")
        return [p for p in pods if p["metadata"]["uid"] != first]
    [second] = await eventually(second_running, "the second pod made", timeout=60)
    assert second["metadata"]["finalizers"] == [TRACKING]
    await eventually(lambda: condition(admin, "twice", "Complete"), "twice complete", timeout=120)
    st = await job_status(admin, "twice")
    assert (st["succeeded"], st.get("failed"), st.get("uncountedTerminatedPods")) == (2, None, None)
    assert await pods_made(admin, "twice") == 2
    assert [p["metadata"].get("finalizers") for p in await job_pods(admin, "twice")] == [None]

    await request(admin, s.api("jobs", "create"), {"object": job(
        "flaky", "exit 1", backoffLimit=1)})
    await delete_first_that_ended(admin, "flaky", "Failed")
    failed = await eventually(lambda: condition(admin, "flaky", "Failed"), "flaky failed",
                              timeout=120)
    assert failed["reason"] == "BackoffLimitExceeded"
    assert (await job_status(admin, "flaky"))["failed"] == 2
    assert await pods_made(admin, "flaky") == 2

    # a pod that holds the finalizer without a Job is released; a running Job's pods do not
    # hold up its (foreground) deletion
    loose = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "loose", "finalizers": [TRACKING]}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}
    await request(admin, s.api("pods", "create"), {"object": loose})
    await request(admin, s.api("jobs", "create"), {"object": job("long", "sleep 3600")})
    await eventually(lambda: job_pods(admin, "long"), "long's pod made", timeout=60)
    await request(admin, s.api("jobs", "delete"), {"namespace": "default", "name": "long",
                                                   "propagationPolicy": "Foreground"})

    async def released() -> bool:
        pod = await request(admin, s.api("pods", "get"), {"namespace": "default",
                                                          "name": "loose"})
        return not pod["metadata"].get("finalizers")
    await eventually(released, "the loose pod released", timeout=60)

    async def long_gone() -> bool:
        try:
            await request(admin, s.api("jobs", "get"), {"namespace": "default", "name": "long"})
        except NotFound:
            return not await job_pods(admin, "long")
        return False
    await eventually(long_gone, "the Job and its pod deleted", timeout=60)
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "loose"})
    for name in ("twice", "flaky"):  # their finished pods go with them, out of podman too
        await request(admin, s.api("jobs", "delete"), {"namespace": "default", "name": name})

    async def none_left() -> bool:
        return not await request(admin, s.api("pods", "list"), {"namespace": "default"})
    await eventually(none_left, "every pod of the test gone", timeout=90)
