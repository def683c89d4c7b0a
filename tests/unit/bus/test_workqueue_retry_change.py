"""A change that arrives while a pass runs is not lost when that pass asks to retry later.

Seen as the scheduler binding the tail of a 20-pod burst up to 5 s late: pods
created during a pass that ended in RetryAfter(5) waited for the retry.
"""

from __future__ import annotations

import asyncio

from peapod.bus.clock import FakeClock
from peapod.bus.workqueue import Done, Outcome, RetryAfter, WorkQueue


async def test_a_change_during_a_retrying_pass_runs_the_key_again_at_once() -> None:
    calls: list[int] = []
    queue: WorkQueue

    async def reconcile(key: str) -> Outcome:
        calls.append(len(calls))
        if len(calls) == 1:
            queue.add(key)  # the key changes while this pass runs
            return RetryAfter(300)
        return Done()

    queue = WorkQueue(reconcile, name="t", clock=FakeClock())  # the clock never moves
    queue.add("k")
    for _ in range(200):
        await asyncio.sleep(0)
    assert calls == [0, 1]
    await queue.close()
