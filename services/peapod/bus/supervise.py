"""No task dies silently: every long-running task of a process runs under here.

A task that raises is logged with its traceback and restarted after a pause
that doubles with each quick failure (0.5 s up to 30 s) and starts again from
the shortest once the task had run healthily for a minute before failing,
so a heartbeat that failed once an hour ago is not restarted 30 s late
today. The process stops only when ``stop`` is set. This is what keeps, say,
a kubelet's heartbeat alive while its pod loop goes on.

``RestartBackoff`` is that rule on its own; ``peapod up`` applies it to the
processes it supervises (1 s up to 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("supervise")

TaskFactory = Callable[[], Awaitable[None]]
Clock = Callable[[], float]


@dataclass
class RestartBackoff:
    """The pause before the next restart: ``initial`` doubling to ``cap`` while runs are
    short, ``initial`` again after a run of at least ``healthy`` seconds."""

    initial: float = 0.5
    cap: float = 30.0
    healthy: float = 60.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.initial

    def after_run(self, ran_for: float) -> float:
        """The pause after a run that lasted ``ran_for`` seconds."""
        if ran_for >= self.healthy:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay


async def _guard(name: str, factory: TaskFactory, stop: asyncio.Event, backoff: RestartBackoff,
                 clock: Clock) -> None:
    while not stop.is_set():
        started = clock()
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = backoff.after_run(clock() - started)
            log.exception("task_crashed", task=name, restart_in=delay)
        else:
            if stop.is_set():
                return
            delay = backoff.after_run(clock() - started)
            log.warning("task_returned", task=name, restart_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


async def supervise(tasks: dict[str, TaskFactory], *, stop: asyncio.Event,
                    backoff: Callable[[], RestartBackoff] = RestartBackoff,
                    clock: Clock = time.monotonic) -> None:
    """Run every task until ``stop`` is set, restarting any that crash (each its own back-off)."""
    running = [asyncio.create_task(_guard(name, factory, stop, backoff(), clock), name=name)
               for name, factory in tasks.items()]
    try:
        await stop.wait()
    finally:
        await cancel_all(running)


async def cancel_all(tasks: list[asyncio.Task[None]], *, again_after: float = 0.5) -> None:
    """Cancel every task and wait for each to end, cancelling again those that go on.

    Again, because Python 3.11's ``asyncio.wait_for`` (nats-py's request uses it) drops a
    cancellation that arrives just as the awaited reply does; the task then runs on as if
    nothing happened, and a loop would never end.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=again_after)
    await asyncio.gather(*tasks, return_exceptions=True)
