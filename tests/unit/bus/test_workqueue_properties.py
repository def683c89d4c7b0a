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
from peapod.bus.workqueue import Done, Outcome, RetryAfter, WorkQueue

KEYS = ["a", "b", "c"]
steps = st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3)), min_size=1, max_size=40)


async def run_program(program: list[tuple[str, int]], durations: list[int],
                      retries: list[bool] | None = None) -> None:
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
        retry = retries[calls % len(retries)] if retries else False
        calls += 1
        running[key] -= 1
        return RetryAfter(3600) if retry else Done()  # the clock never moves: no retry fires

    queue = WorkQueue(reconcile, name="prop", clock=FakeClock())
    for key, pause in program:
        turn += 1
        added[key].append(turn)
        queue.add(key)
        for _ in range(pause):
            await asyncio.sleep(0)
    turn += 1
    def caught_up() -> bool:
        return all(not added[k] or (started[k] and started[k][-1] >= added[k][-1]) for k in KEYS)

    for _ in range(500):
        if caught_up() and not any(running.values()):
            break
        await asyncio.sleep(0)
    if not retries:
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


@settings(max_examples=200, deadline=None)
@given(program=steps, durations=st.lists(st.integers(0, 4), min_size=1, max_size=8),
       retries=st.lists(st.booleans(), min_size=1, max_size=8))
def test_a_change_is_not_held_back_by_a_retry_the_pass_asked_for(program, durations,
                                                                   retries) -> None:
    asyncio.run(run_program(program, durations, retries))
