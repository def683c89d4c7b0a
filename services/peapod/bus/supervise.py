"""No task dies silently: every long-running task of a process runs under here.

A task that raises is logged with its traceback and restarted after a short
pause (doubling to 30 s); the process stops only when ``stop`` is set. This
is what keeps, say, a kubelet's heartbeat alive while its pod loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("supervise")

TaskFactory = Callable[[], Awaitable[None]]


async def _guard(name: str, factory: TaskFactory, stop: asyncio.Event) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task_crashed", task=name, restart_in=delay)
        else:
            if stop.is_set():
                return
            log.warning("task_returned", task=name, restart_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, 30)


async def supervise(tasks: dict[str, TaskFactory], *, stop: asyncio.Event) -> None:
    """Run every task until ``stop`` is set, restarting any that crash."""
    running = [asyncio.create_task(_guard(name, factory, stop), name=name)
               for name, factory in tasks.items()]
    try:
        await stop.wait()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
