"""Per-key workers: one sequential worker per object key, keys in parallel.

Why a worker per key (kopf's queueing, client-go's workqueue): two changes
to the same pod must never be reconciled at the same time, or the second
acts on a state the first is changing; changes to different pods have
nothing to wait for. So ``add(key)`` marks the key dirty and starts its
worker if it has none; the worker reconciles until the key is clean, then
ends, so idle keys cost nothing. Changes that arrive while a key is being
reconciled fold into one more pass (the reconciler reads the latest state,
it is level-triggered), never into a queue of stale events.

A reconciler says what happened with a typed outcome, and the queue decides
what follows, instead of each caller catching Exception and sleeping:

* ``Done()``: nothing more to do until the key changes again;
* ``RetryAfter(seconds)``: run again after that long, or sooner if the key
  changes meanwhile;
* ``PermanentError(reason)``: retrying cannot help (logged once); the key
  waits for its next change.

A reconciler that raises is a bug, not an outcome: the worker logs it with
its traceback and runs the key again after ``RestartBackoff`` (doubling
while it keeps failing, from the shortest again after a healthy run), so no
worker dies silently. ``close()`` cancels every worker and awaits it: no
task outlives the queue. Time comes from an injected ``Clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.supervise import RestartBackoff

log = structlog.get_logger("workqueue")


@dataclass(frozen=True)
class Done:
    """The key is reconciled."""


@dataclass(frozen=True)
class RetryAfter:
    """Reconcile the key again after ``seconds`` (or at its next change)."""

    seconds: float


@dataclass(frozen=True)
class PermanentError:
    """Retrying cannot help; wait for the key to change."""

    reason: str


Outcome = Done | RetryAfter | PermanentError
Reconciler = Callable[[str], Awaitable[Outcome]]


class _Key:
    """What the queue knows about one key: dirty, its worker, its back-off."""

    def __init__(self, backoff: RestartBackoff) -> None:
        self.dirty = asyncio.Event()
        self.worker: asyncio.Task[None] | None = None
        self.backoff = backoff


class WorkQueue:
    def __init__(self, reconcile: Reconciler, *, name: str, clock: Clock = SYSTEM_CLOCK,
                 backoff: Callable[[], RestartBackoff] = RestartBackoff) -> None:
        self._reconcile = reconcile
        self._clock = clock
        self._backoff = backoff
        self._keys: dict[str, _Key] = {}
        self._closed = False
        self._log = log.bind(queue=name)

    def add(self, key: str) -> None:
        """Reconcile ``key`` soon: now if idle, once more after its current pass if busy."""
        if self._closed:
            return
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key(self._backoff())
        state.dirty.set()
        if state.worker is None or state.worker.done():
            state.worker = asyncio.create_task(self._work(key, state), name=f"reconcile {key}")

    @property
    def active(self) -> set[str]:
        """Keys whose worker is running (reconciling or waiting to retry)."""
        return {k for k, st in self._keys.items() if st.worker and not st.worker.done()}

    async def close(self) -> None:
        """Stop every worker and wait for each to end."""
        self._closed = True
        workers = [st.worker for st in self._keys.values() if st.worker]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._keys.clear()

    async def _work(self, key: str, state: _Key) -> None:
        while state.dirty.is_set():
            state.dirty.clear()
            delay = await self._pass(key, state)
            if delay is not None:
                await self._wait(state, delay)
        # idle: forget the key unless someone re-added it after our last check
        if self._keys.get(key) is state and not state.dirty.is_set():
            del self._keys[key]

    async def _pass(self, key: str, state: _Key) -> float | None:
        """One reconcile; the delay before the next pass, or None if it waits for a change."""
        started = self._clock.monotonic()
        try:
            outcome = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = state.backoff.after_run(self._clock.monotonic() - started)
            self._log.exception("reconcile_crashed", key=key, retry_in=delay)
            await self._clock.sleep(delay)  # a change does not cut a crash's back-off short
            state.dirty.set()
            return None
        state.backoff = self._backoff()  # a clean pass: the next crash starts from the shortest
        match outcome:
            case Done():
                return None
            case RetryAfter(seconds=seconds):
                if state.dirty.is_set():  # changed during the pass: run again now, not later
                    return None
                self._log.debug("reconcile_retry", key=key, retry_in=seconds)
                state.dirty.set()
                return seconds
            case PermanentError(reason=reason):
                self._log.warning("reconcile_failed", key=key, reason=reason)
                return None
        raise TypeError(f"reconciler returned {outcome!r}, not Done/RetryAfter/PermanentError")

    async def _wait(self, state: _Key, delay: float) -> None:
        """Sleep ``delay``, or less if the key changes meanwhile (dirty stays set)."""
        state.dirty.clear()
        sleep = asyncio.ensure_future(self._clock.sleep(delay))
        changed = asyncio.ensure_future(state.dirty.wait())
        try:
            await asyncio.wait({sleep, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            changed.cancel()
            await asyncio.gather(sleep, changed, return_exceptions=True)
        state.dirty.set()
