"""The task supervisor: crashes are logged and restarted, with a back-off that resets.

Time is injected: the supervisor reads a fake clock, which the tasks advance
to say how long they ran, and the pauses are made tiny, so nothing here
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from peapod.bus.supervise import RestartBackoff, cancel_all, supervise


def test_the_pause_doubles_to_its_cap_while_runs_are_short() -> None:
    backoff = RestartBackoff(initial=1, cap=30, healthy=60)
    assert [backoff.after_run(2) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_healthy_run_resets_the_pause() -> None:
    backoff = RestartBackoff(initial=1, cap=30, healthy=60)
    assert [backoff.after_run(ran) for ran in (0, 0, 0, 59.9, 60, 0, 3600, 0)] == [
        1, 2, 4, 8, 1, 2, 1, 2]


async def test_a_crashing_task_is_restarted_and_its_pause_resets_after_a_healthy_run() -> None:
    now = [0.0]
    # how long each run of the task lasts, on the fake clock, before it raises
    runs = iter([0, 0, 0, 120, 0, 0])
    stop = asyncio.Event()
    started: list[int] = []

    async def flaky() -> None:
        started.append(1)
        ran = next(runs, None)
        if ran is None:
            stop.set()
            return
        now[0] += ran
        raise RuntimeError("boom")

    with capture_logs() as logs:
        await supervise({"flaky": flaky}, stop=stop, clock=lambda: now[0],
                        backoff=lambda: RestartBackoff(initial=0.001, cap=0.004, healthy=60))
    crashes = [entry for entry in logs if entry["event"] == "task_crashed"]
    assert [c["restart_in"] for c in crashes] == [0.001, 0.002, 0.004, 0.001, 0.002, 0.004]
    assert {c["task"] for c in crashes} == {"flaky"} and len(started) == 7


async def test_a_task_that_returns_is_restarted_too() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def quits() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()

    with capture_logs() as logs:
        await supervise({"quits": quits}, stop=stop,
                        backoff=lambda: RestartBackoff(initial=0.001, cap=0.001))
    assert [entry["event"] for entry in logs] == ["task_returned", "task_returned"]
    assert len(calls) == 3


async def test_a_task_that_loses_a_cancellation_is_cancelled_again() -> None:
    # What Python 3.11's asyncio.wait_for does when a reply lands as the cancel does: the
    # CancelledError is swallowed and the task carries on with its loop.
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all([task], again_after=0.05), 5)
    assert task.cancelled() and swallowed == 1
