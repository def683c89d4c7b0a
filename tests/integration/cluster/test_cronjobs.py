"""CronJobs against a real nats-server and apiserver, the controller on a clock the test moves.

The CronJob controller runs in-process with its own controller-manager
connection and a ``FakeClock`` started at the real time (the apiserver
stamps creation times with the real clock), so a minute of schedule takes
one ``advance`` instead of a minute. No Job controller runs here: the test
writes a Job's status as the Job controller would. ``test_cronjobs_podman``
runs the whole chain on podman.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.bus.clock import FakeClock
from peapod.bus.events import EventRecorder
from peapod.bus.replay import read_all
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache
from peapod.controllers.cronjob import CronJobController
from peapod.errors import NotFound
from tests.integration.cluster.cli import cli_for
from tests.waiting import eventually


class CronManager:
    """The CronJob controller and its cache in-process, on ``clock``; ``restart`` is a new
    process's worth of state (a fresh cache, no memory of its writes)."""

    def __init__(self, creds: Any, clock: FakeClock) -> None:
        self.creds, self.clock = creds, clock
        self.tasks: list[asyncio.Task[None]] = []
        self.nc: Any = None

    async def start(self) -> None:
        self.nc = await connect(self.creds, name="test-cronjob-controller")
        cache = ControllerCache(jetstream(self.nc))
        controller = CronJobController(
            cache=cache, api=ApiClient(self.nc), clock=self.clock, zone=UTC,
            events=EventRecorder(self.nc, component="cronjob-controller"))
        self.tasks = [asyncio.create_task(cache.informer.run()),
                      asyncio.create_task(controller.run())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.nc is not None:
            await self.nc.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def settle(self) -> None:
        """Wait until the controller sleeps on the clock, and still does a moment later (its
        passes are over, none woken by a change is under way)."""
        calm = 0
        for _ in range(150):
            calm = calm + 1 if self.clock.sleepers > 0 else 0
            if calm >= 3:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the controller never waits")

    async def to_next_minute(self, plus: float = 1.0, *, settle: bool = True) -> int:
        """Move the clock just past the next whole minute; that minute since the epoch."""
        if settle:
            await self.settle()
        now = self.clock.now()
        minute = int(now // 60) + 1
        self.clock.advance(minute * 60 - now + plus)
        return minute


@pytest.fixture
async def cron(apiserver) -> AsyncIterator[dict]:
    clock = FakeClock(now=time.time())
    manager = CronManager(apiserver["creds"]["controller-manager"], clock)
    await manager.start()
    try:
        yield {**apiserver, "clock": clock, "manager": manager}
    finally:
        await manager.stop()


def cronjob(name: str, schedule: str = "* * * * *", script: str = "true", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "work", "image": "localhost/peapod-busybox:latest",
                                    "command": ["sh", "-c", script]}]}}}}}}


async def get(admin, resource: str, name: str) -> dict:
    return await request(admin, s.api(resource, "get"), {"namespace": "default", "name": name})


async def jobs_of(admin, name: str) -> list[dict]:
    return await request(admin, s.api("jobs", "list"), {"namespace": "default",
                                                        "labelSelector": f"cron={name}"})


async def cron_events(admin, name: str) -> list[dict]:
    msgs = await read_all(jetstream(admin), stream=s.EVENTS_STREAM,
                          subject=s.event("default", "CronJob", name))
    return [json.loads(m.data) for m in msgs]


async def wait_event(admin, name: str, reason: str, count: int = 1) -> list[dict]:
    async def seen() -> list[dict]:
        got = [e for e in await cron_events(admin, name) if e["reason"] == reason]
        return got if sum(e.get("count", 1) for e in got) >= count else []
    return await eventually(seen, f"{reason} event for {name}")


async def update(admin, name: str, **spec) -> None:
    current = await get(admin, "cronjobs", name)
    current["spec"].update(spec)
    await request(admin, s.api("cronjobs", "update"), {"object": current})


async def finish(admin, job_name: str, kind: str = "Complete") -> None:
    """Write what the Job controller would when the Job ends."""
    job = await get(admin, "jobs", job_name)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    job["status"] = {"startTime": stamp, "conditions": [
        {"type": kind, "status": "True", "lastTransitionTime": stamp}],
        **({"completionTime": stamp, "succeeded": 1} if kind == "Complete" else {"failed": 1})}
    await request(admin, s.api("jobs", "status"), {"object": job})


async def test_runs_each_minute_once_across_restarts(cron):
    admin, manager = cron["admin"], cron["manager"]
    made = await request(admin, s.api("cronjobs", "create"), {"object": cronjob("tick")})
    assert made["spec"]["concurrencyPolicy"] == "Allow"
    assert made["spec"]["successfulJobsHistoryLimit"] == 3
    minute = await manager.to_next_minute()
    name = f"tick-{minute}"
    job = await eventually(lambda: _get_or_none(admin, "jobs", name), f"job {name}")
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "CronJob", "tick", made["metadata"]["uid"], True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute * 60))
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] \
        == stamp
    assert job["metadata"]["labels"]["cron"] == "tick"
    status = (await eventually(lambda: _status_with(admin, "tick", "active"), "active"))
    assert [a["name"] for a in status["active"]] == [name]
    assert status["lastScheduleTime"] == stamp
    created = (await wait_event(admin, "tick", "SuccessfulCreate"))[0]
    assert created["message"] == f"Created job {name}"
    assert created["involvedObject"]["apiVersion"] == "batch/v1"  # the CronJob's, as Kubernetes

    # a restart at any point: the same minute is not run again
    await manager.restart()
    await manager.settle()
    assert [j["metadata"]["name"] for j in await jobs_of(admin, "tick")] == [name]

    # a crash between creating the next Job and writing the status: the Job is there, the
    # status does not list it; the next pass finds it by its name and adopts it
    await manager.stop()
    orphan = dict(job, metadata={
        "name": f"tick-{minute + 1}", "labels": {"cron": "tick"},
        "ownerReferences": job["metadata"]["ownerReferences"]})
    orphan["spec"] = {"template": {"spec": job["spec"]["template"]["spec"]}}
    orphan.pop("status", None)
    await request(admin, s.api("jobs", "create"), {"object": orphan})
    await manager.start()
    await manager.to_next_minute()
    status = await eventually(lambda: _status_with(admin, "tick", "active", 2), "both active")
    assert sorted(a["name"] for a in status["active"]) == [name, f"tick-{minute + 1}"]
    assert len(await jobs_of(admin, "tick")) == 2
    await wait_event(admin, "tick", "UnexpectedJob")

    # finished Jobs leave status.active; lastSuccessfulTime follows the latest completion
    await finish(admin, name)
    await wait_event(admin, "tick", "SawCompletedJob")
    status = await eventually(lambda: _status_with(admin, "tick", "lastSuccessfulTime"), "done")
    assert [a["name"] for a in status["active"]] == [f"tick-{minute + 1}"]
    events = await cron_events(admin, "tick")
    assert f"Saw completed job: {name}, condition: Complete" in {e["message"] for e in events}
    await request(admin, s.api("cronjobs", "delete"), {"namespace": "default", "name": "tick"})


async def test_concurrency_policies_and_history(cron):
    admin, manager = cron["admin"], cron["manager"]
    await request(admin, s.api("cronjobs", "create"), {"object": cronjob(
        "busy", concurrencyPolicy="Forbid", failedJobsHistoryLimit=0)})
    first = f"busy-{await manager.to_next_minute()}"
    await eventually(lambda: _status_with(admin, "busy", "active"), "first job active")

    # Forbid: the next minute finds it running and starts nothing
    await manager.to_next_minute()
    event = (await wait_event(admin, "busy", "JobAlreadyActive"))[0]
    assert event["message"] == ("Not starting job because prior execution is running and "
                                "concurrency policy is Forbid")
    assert [j["metadata"]["name"] for j in await jobs_of(admin, "busy")] == [first]

    # Replace: the running Job is deleted and the new one takes its place
    await update(admin, "busy", concurrencyPolicy="Replace")
    second = f"busy-{await manager.to_next_minute()}"
    await wait_event(admin, "busy", "SuccessfulDelete")
    status = await eventually(lambda: _active_is(admin, "busy", [second]), "replaced")
    assert status["lastScheduleTime"]
    assert [j["metadata"]["name"] for j in await jobs_of(admin, "busy")] == [second]

    # failedJobsHistoryLimit 0: a failed Job is deleted as soon as it is seen finished
    await finish(admin, second, "Failed")
    await eventually(lambda: _gone(admin, "jobs", second), "failed job deleted")
    await eventually(lambda: _active_is(admin, "busy", []), "nothing active")

    # suspend: no run while it is set
    await update(admin, "busy", suspend=True)
    await asyncio.sleep(0.5)  # a suspended CronJob has no timer: nothing to settle on
    await manager.to_next_minute(plus=5, settle=False)
    await asyncio.sleep(0.5)
    assert await jobs_of(admin, "busy") == []
    await request(admin, s.api("cronjobs", "delete"), {"namespace": "default", "name": "busy"})


async def test_missed_schedules(cron):
    admin, manager, clock = cron["admin"], cron["manager"], cron["clock"]
    await request(admin, s.api("cronjobs", "create"), {"object": cronjob(
        "late", startingDeadlineSeconds=10)})
    await request(admin, s.api("cronjobs", "create"), {"object": cronjob("asleep")})
    # to 30 s past the third whole minute from now: the latest time is 30 s old, > 10 s
    await manager.to_next_minute(plus=150)
    event = (await wait_event(admin, "late", "MissSchedule"))[0]
    assert event["type"] == "Warning"
    assert event["message"].startswith("Missed scheduled time to start a job: ")
    assert event["message"].endswith(":00 +0000")
    assert await jobs_of(admin, "late") == []

    first = await eventually(lambda: jobs_of(admin, "asleep"), "asleep ran once")
    await manager.settle()
    clock.advance(103 * 60)  # over a hundred missed: warned, and only the latest runs
    event = (await wait_event(admin, "asleep", "TooManyMissedTimes"))[0]
    assert event["message"] == ("too many missed start times. Set or decrease "
                                ".spec.startingDeadlineSeconds or check clock skew")
    latest = f"asleep-{int(clock.now() // 60)}"
    await eventually(lambda: _get_or_none(admin, "jobs", latest), "the latest run")
    assert len(await jobs_of(admin, "asleep")) == len(first) + 1
    for name in ("late", "asleep"):
        await request(admin, s.api("cronjobs", "delete"), {"namespace": "default", "name": name})


async def _get_or_none(admin, resource: str, name: str) -> dict | None:
    with contextlib.suppress(NotFound):
        return await get(admin, resource, name)
    return None


async def _gone(admin, resource: str, name: str) -> bool:
    return await _get_or_none(admin, resource, name) is None


async def _status_with(admin, name: str, field: str, count: int = 1) -> dict | None:
    status = (await get(admin, "cronjobs", name)).get("status") or {}
    value = status.get(field)
    if isinstance(value, list):
        return status if len(value) >= count else None
    return status if value else None


async def _active_is(admin, name: str, names: list[str]) -> dict | None:
    status = (await get(admin, "cronjobs", name)).get("status") or {}
    return status if [a["name"] for a in status.get("active") or []] == names else None


async def test_cli_create_get_describe_and_job_from(cron, tmp_path):
    admin = cron["admin"]
    cli = cli_for(cron, tmp_path)
    made = await cli("create", "cronjob", "hello", "--image=localhost/peapod-busybox:latest",
                     "--schedule=*/5 * * * *", "--", "sh", "-c", "date")
    assert (made.code, made.out) == (0, "cronjob.batch/hello created\n"), made.err
    spec = (await get(admin, "cronjobs", "hello"))["spec"]
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["command"]) == ("hello", ["sh", "-c", "date"])
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    refused = await cli("create", "cronjob", "bad", "--image=x", "--schedule=0 0 * * 7")
    assert refused.code == 1 and "end of range (7) above maximum (6): 7" in refused.err
    refused = await cli("create", "cronjob", "bad", "--image=x")
    assert refused.code == 1 and 'required flag(s) "schedule" not set' in refused.err
    refused = await cli("create", "configmap", "c", "--schedule=* * * * *")
    assert refused.code == 1 and "unknown flag: --schedule" in refused.err

    table = await cli("get", "cj")
    lines = table.out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST",
                                "SCHEDULE", "AGE"]
    assert lines[1].split()[:9] == ["hello", "*/5", "*", "*", "*", "*", "<none>", "False", "0"]
    assert lines[1].split()[9] == "<none>"  # LAST SCHEDULE
    wide = await cli("get", "cronjobs", "-o", "wide")
    assert wide.out.splitlines()[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "cronjob.batch/hello" in (await cli("get", "all")).out

    made = await cli("create", "job", "by-hand", "--from=cronjob/hello")
    assert (made.code, made.out) == (0, "job.batch/by-hand created\n"), made.err
    job = await get(admin, "jobs", "by-hand")
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "hello", True)
    refused = await cli("create", "job", "x", "--from=deploy/web")
    assert refused.code == 1 and "from must be an existing cronjob: deploy/web" in refused.err

    await wait_event(admin, "hello", "UnexpectedJob")  # a Job it did not make, as Kubernetes
    described = (await cli("describe", "cronjob", "hello")).out
    for line in ("Name:                          hello", "Schedule:                      */5 * * * *",
                 "Concurrency Policy:            Allow", "Suspend:                       False",
                 "Successful Job History Limit:  3", "Failed Job History Limit:      1",
                 "Starting Deadline Seconds:     <unset>", "Last Schedule Time:  <unset>",
                 "Active Jobs:         <none>"):
        assert line in described, described
    assert "Saw a job that the controller did not create or forgot: by-hand" in described
    deleted = await cli("delete", "cj", "hello")
    assert deleted.out == 'cronjob.batch "hello" deleted\n', deleted

    manifest = json.dumps(cronjob("applied", schedule="@daily"))
    applied = await cli("apply", "-f", "-", stdin=manifest)
    assert applied.out == "cronjob.batch/applied created\n", applied
    changed = json.dumps(cronjob("applied", schedule="@hourly", suspend=True))
    applied = await cli("apply", "-f", "-", stdin=changed)
    assert applied.out == "cronjob.batch/applied configured\n", applied
    spec = (await get(admin, "cronjobs", "applied"))["spec"]
    assert (spec["schedule"], spec["suspend"]) == ("@hourly", True)
    every = await cli("apply", "-f", "-", stdin=json.dumps(
        cronjob("applied", schedule="@every 1h30m", suspend=True)))
    assert every.out == "cronjob.batch/applied configured\n", every
    refused = await cli("apply", "-f", "-", stdin=json.dumps(
        cronjob("applied", schedule="@every 1d")))
    assert refused.code == 1 and 'time: unknown unit "d" in duration "1d"' in refused.err
    await cli("delete", "cronjob", "applied")
