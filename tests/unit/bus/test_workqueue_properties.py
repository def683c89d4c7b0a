"""Properties of the work queue over random interleavings of changes and reconciles.

Hypothesis draws a program: changes to a few keys, pauses of a few loop
turns between them, and how many turns each reconcile takes. Whatever it
draws, no key is reconciled twice at once, no change is lost (every key's
last change is followed by a reconcile that started after it), changes fold
rather than queue up, and nothing is left running.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from peapod.bus.clock import FakeClock
from peapod.bus.workqueue import Done, Outcome, WorkQueue

KEYS = ["a", "b", "c"]
steps = st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3)), min_size=1, max_size=40)


async def run_program(program: list[tuple[str, int]], durations: list[int]) -> None:
    turn = 0
    running: dict[str, int] = dict.fromkeys(KEYS, 0)
    started: dict[str, list[int]] = {k: [] for k in KEYS}
    added: dict[str, list[int]] = {k: [] for k in KEYS}
    calls = 0

    async def reconcile(key: str) -> Outcome:
        nonlocal calls
        running[key] += 1
        assert running[key] == 1, f"{key} reconciled twice at once"
        started[key].append(turn)
        for _ in range(durations[calls % len(durations)]):
            await asyncio.sleep(0)
        calls += 1
        running[key] -= 1
        return Done()

    queue = WorkQueue(reconcile, name="prop", clock=FakeClock())
    for key, pause in program:
        turn += 1
        added[key].append(turn)
        queue.add(key)
        for _ in range(pause):
            await asyncio.sleep(0)
    turn += 1
    for _ in range(500):
        if not queue.active:
            break
        await asyncio.sleep(0)
    assert queue.active == set()
    for key in KEYS:
        if added[key]:
            assert started[key] and started[key][-1] >= added[key][-1], f"{key}: last change lost"
        assert len(started[key]) <= len(added[key])
    await queue.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("reconcile ")]


@settings(max_examples=200, deadline=None)
@given(program=steps, durations=st.lists(st.integers(0, 4), min_size=1, max_size=8))
def test_any_interleaving_keeps_keys_sequential_and_loses_no_change(program, durations) -> None:
    asyncio.run(run_program(program, durations))
