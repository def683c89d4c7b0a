"""Per-key workers: sequential per key, parallel across keys, typed outcomes, back-off on a fake clock.

No test sleeps: time is a FakeClock that the test advances once the worker
is waiting on it.
"""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from peapod.bus.clock import FakeClock
from peapod.bus.supervise import RestartBackoff
from peapod.bus.workqueue import Done, Outcome, PermanentError, RetryAfter, WorkQueue


async def settle(clock: FakeClock | None = None, sleepers: int = 0) -> None:
    """Let the workers run until they wait (on the clock, if ``sleepers`` is given)."""
    for _ in range(200):
        await asyncio.sleep(0)
        if clock is not None and clock.sleepers >= sleepers > 0:
            return
    if sleepers:
        raise AssertionError(f"expected {sleepers} sleepers, have {clock.sleepers if clock else 0}")


async def test_one_key_is_reconciled_sequentially_and_keys_in_parallel() -> None:
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    gates = {"a": asyncio.Event(), "b": asyncio.Event()}
    calls: list[str] = []

    async def reconcile(key: str) -> Outcome:
        running[key] = running.get(key, 0) + 1
        most[key] = max(most.get(key, 0), running[key])
        calls.append(key)
        await gates[key].wait()
        running[key] -= 1
        return Done()

    queue = WorkQueue(reconcile, name="t", clock=FakeClock())
    queue.add("a")
    queue.add("b")
    await settle()
    assert sorted(calls) == ["a", "b"]  # b did not wait for a
    queue.add("a")
    queue.add("a")
    gates["a"].set()
    gates["b"].set()
    await settle()
    # the two adds of "a" made while it ran fold into one more pass, never two at once
    assert calls.count("a") == 2 and most == {"a": 1, "b": 1}
    assert queue.active == set()
    await queue.close()


async def test_retry_after_runs_again_after_that_long_on_the_clock() -> None:
    clock = FakeClock()
    outcomes = iter([RetryAfter(300), Done()])
    calls: list[float] = []

    async def reconcile(key: str) -> Outcome:
        calls.append(clock.monotonic())
        return next(outcomes)

    queue = WorkQueue(reconcile, name="t", clock=clock)
    queue.add("k")
    await settle(clock, sleepers=1)
    clock.advance(299)
    await settle()
    assert len(calls) == 1
    clock.advance(1)
    await settle()
    assert calls == [1000.0, 1300.0]
    assert queue.active == set()
    await queue.close()


async def test_a_change_cuts_a_retry_wait_short() -> None:
    clock = FakeClock()
    outcomes = iter([RetryAfter(60), Done()])
    calls: list[str] = []

    async def reconcile(key: str) -> Outcome:
        calls.append(key)
        return next(outcomes)

    queue = WorkQueue(reconcile, name="t", clock=clock)
    queue.add("k")
    await settle(clock, sleepers=1)
    queue.add("k")
    await settle()
    assert calls == ["k", "k"]
    assert clock.sleepers == 0 and queue.active == set()
    await queue.close()


async def test_a_permanent_error_is_logged_once_and_waits_for_a_change() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> Outcome:
        calls.append(key)
        return PermanentError("image name is not valid")

    queue = WorkQueue(reconcile, name="t", clock=FakeClock())
    with capture_logs() as logs:
        queue.add("k")
        await settle()
    assert calls == ["k"] and queue.active == set()
    assert [(e["event"], e["reason"]) for e in logs] == [("reconcile_failed", "image name is not valid")]
    queue.add("k")
    await settle()
    assert calls == ["k", "k"]
    await queue.close()


async def test_a_crash_is_retried_with_a_back_off_that_resets_after_a_clean_pass() -> None:
    clock = FakeClock()
    # what each pass does: raise, or return an outcome
    script = iter(["crash", "crash", "crash", "done", "crash", "done"])
    calls: list[float] = []

    async def reconcile(key: str) -> Outcome:
        calls.append(clock.monotonic())
        if next(script) == "crash":
            raise RuntimeError("bug")
        return Done()

    queue = WorkQueue(reconcile, name="t", clock=clock,
                      backoff=lambda: RestartBackoff(initial=1, cap=30, healthy=60))
    with capture_logs() as logs:
        queue.add("k")
        for pause in (1, 2, 4):  # doubling while it keeps crashing
            await settle(clock, sleepers=1)
            clock.advance(pause)
        await settle()
        assert queue.active == set()
        queue.add("k")  # a new change, after a clean pass: the pause starts from 1 s again
        await settle(clock, sleepers=1)
        clock.advance(1)
        await settle()
    assert [c - 1000 for c in calls] == [0, 1, 3, 7, 7, 8]
    crashes = [e for e in logs if e["event"] == "reconcile_crashed"]
    assert [e["retry_in"] for e in crashes] == [1, 2, 4, 1]
    assert queue.active == set()
    await queue.close()


async def test_close_cancels_and_awaits_every_worker() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def reconcile(key: str) -> Outcome:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        return Done()

    queue = WorkQueue(reconcile, name="t", clock=FakeClock())
    for key in ("a", "b", "c"):
        queue.add(key)
    await started.wait()
    before = asyncio.all_tasks()
    await queue.close()
    assert sorted(cancelled) == ["a", "b", "c"]
    assert not any(t.get_name().startswith("reconcile ") for t in asyncio.all_tasks())
    assert len(asyncio.all_tasks()) < len(before)
    queue.add("d")  # a closed queue starts nothing
    assert queue.active == set()
