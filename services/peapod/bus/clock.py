"""One injected clock: monotonic time for intervals, wall time for stamps, and sleep.

Back-off, retry-after and "repeat this event after a minute" all measure
intervals; they read ``monotonic()`` and wait with ``sleep()``, never
``time`` or ``asyncio.sleep`` directly, so a test can hand them a
``FakeClock`` and move time with ``advance()`` instead of waiting: a
five-minute back-off is then tested in milliseconds and cannot flake.
``now()`` is the wall clock (epoch seconds), for what is compared with
timestamps other machines wrote (a lease's renew time).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that moves only when told: ``advance`` wakes every sleeper whose time came."""

    def __init__(self, *, monotonic: float = 1000.0, now: float = 1_800_000_000.0) -> None:
        self._monotonic = monotonic
        self._offset = now - monotonic
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._monotonic

    def now(self) -> float:
        return self._monotonic + self._offset

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting (a test waits for this before advancing)."""
        return sum(1 for _, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._monotonic + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move both clocks on by ``seconds`` and wake the sleepers that are due."""
        self._monotonic += seconds
        waiting = []
        for deadline, future in self._sleepers:
            if future.done():
                continue
            if deadline <= self._monotonic:
                future.set_result(None)
            else:
                waiting.append((deadline, future))
        self._sleepers = waiting
