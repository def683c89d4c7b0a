"""One wait loop for the async tests: poll a condition until it holds, with a hang guard."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], what: str = "the condition", *,
                     timeout: float = 30, every: float = 0.1) -> Any:
    """Wait until ``check()`` is truthy and return what it returned.

    ``check`` may be a plain function (run in a worker thread, so that one calling podman does
    not hold up the event loop the components under test run in) or return an awaitable
    (awaited in the loop). ``timeout`` guards against a hang; it is no speed target.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        await asyncio.sleep(every)
