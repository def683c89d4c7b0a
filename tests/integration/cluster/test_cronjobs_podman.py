"""A CronJob's runs on real podman: Job, pod, completion, history limit, garbage collection.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py`` (apiserver,
scheduler, two kubelets on podman). Its controller manager process is
replaced by one started with ``--controllers=*,-cronjob`` (the Job
controller and the garbage collector run there, on the real clock), and the
CronJob controller runs in-process on a clock the test moves, so two runs a
minute apart take seconds.
"""

from __future__ import annotations

import time

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.clock import FakeClock
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_cronjobs import (
    CronManager,
    cron_events,
    cronjob,
    get,
    jobs_of,
    wait_event,
)
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    ControllerManagerProcess,
    fleet,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


async def pods_of_job(admin, job: str) -> list[dict]:
    return await request(admin, s.api("pods", "list"), {"namespace": "default",
                                                        "labelSelector": f"job-name={job}"})


async def test_runs_complete_and_history_is_trimmed(fleet, tmp_path):  # noqa: F811
    admin = fleet["admin"]
    fleet["manager"].stop()
    manager = ControllerManagerProcess(fleet["manager"].creds_file, tmp_path / "cm.log",
                                       args=("--controllers=*,-cronjob", "--leader-elect=false"))
    manager.start()
    fleet["manager"] = manager
    cron = CronManager(fleet["creds"]["controller-manager"], FakeClock(now=time.time()))
    await cron.start()
    try:
        await request(admin, s.api("cronjobs", "create"), {"object": cronjob(
            "nightly", script="echo ran", successfulJobsHistoryLimit=1)})
        first = f"nightly-{await cron.to_next_minute()}"

        async def succeeded(job: str) -> bool:
            pods = await pods_of_job(admin, job)
            done = (await get(admin, "jobs", job)).get("status", {}).get("succeeded")
            return bool(pods) and done == 1
        await eventually(lambda: succeeded(first), f"{first} ran on podman", timeout=120)
        await wait_event(admin, "nightly", "SawCompletedJob")

        async def done() -> bool:  # the status is written after the event is sent
            status = (await get(admin, "cronjobs", "nightly"))["status"]
            return "active" not in status and bool(status.get("lastSuccessfulTime"))
        await eventually(done, "active empty, lastSuccessfulTime set")

        second = f"nightly-{await cron.to_next_minute()}"
        await eventually(lambda: succeeded(second), f"{second} ran on podman", timeout=120)

        async def trimmed() -> bool:  # the oldest Job and, by garbage collection, its pod
            names = [j["metadata"]["name"] for j in await jobs_of(admin, "nightly")]
            return names == [second] and not await pods_of_job(admin, first)
        await eventually(trimmed, "the first run deleted with its pod", timeout=60)
        messages = {e["message"] for e in await cron_events(admin, "nightly")}
        assert {f"Created job {first}", f"Created job {second}", f"Deleted job {first}"} <= messages

        cli = cli_for(fleet, tmp_path)
        row = (await cli("get", "cronjobs")).out.splitlines()[1].split()
        assert row[:9] == ["nightly", "*", "*", "*", "*", "*", "<none>", "False", "0"]
        assert row[9] != "<none>"  # LAST SCHEDULE: an age
        jobs = (await cli("get", "jobs")).out.splitlines()[1].split()
        assert jobs[:3] == [second, "Complete", "1/1"]

        await request(admin, s.api("cronjobs", "delete"), {"namespace": "default",
                                                            "name": "nightly"})

        async def all_gone() -> bool:
            return not await jobs_of(admin, "nightly") and not await pods_of_job(admin, second)
        await eventually(all_gone, "the CronJob's Jobs and pods collected", timeout=60)
    finally:
        await cron.stop()
