"""Where the kubelet's synchronous podman calls run: three pools of threads, never the event loop.

podman-py is synchronous, so every podman call runs in a thread. Which
thread matters more than it seems: with one shared pool (asyncio's default
executor has ``cpu + 4`` threads) a handful of slow calls — pulls from a slow
registry — occupy every thread, and then nothing else reaches podman: not the
relist, not another pod's start, so every pod's status stalls. Hence:

* ``call``: the pods' own work (create, start, inspect, stop, remove). Every
  call here is short — nothing in the runtime sleeps; grace periods are
  waited out on the event loop — so a burst of pods proceeds side by side.
* ``relist``: its own thread, so the once-a-second snapshot that drives every
  pod's status is never queued behind pod work.
* ``pull``: one thread, so image pulls are serialized (Kubernetes' default,
  ``serializeImagePulls``): a slow link is not hammered by parallel pulls, and
  a long pull holds back only the pods waiting for an image.
* ``probe``: exec probes and exec hooks. podman's exec call blocks until the
  command ends; one that outlives its timeout is abandoned by the caller but
  keeps its thread, so these have threads of their own and never take the
  pods' threads away.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

POD_WORKERS = 8
PROBE_WORKERS = 4


class PodmanThreads:
    def __init__(self, *, workers: int = POD_WORKERS) -> None:
        self.workers = workers
        self._pods = ThreadPoolExecutor(workers, thread_name_prefix="podman")
        self._relist = ThreadPoolExecutor(1, thread_name_prefix="podman-relist")
        self._pulls = ThreadPoolExecutor(1, thread_name_prefix="podman-pull")
        self._probes = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="podman-probe")

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._pods, fn, *args, **kwargs)

    async def relist(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._relist, fn, *args, **kwargs)

    async def pull(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._pulls, fn, *args, **kwargs)

    async def probe(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._probes, fn, *args, **kwargs)

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, fn: Callable[P, T], /, *args: P.args,
                   **kwargs: P.kwargs) -> T:
        # as asyncio.to_thread does: the call runs in the caller's context, so the
        # logging context (component, pod, uid) reaches log lines made in the thread
        loop, context = asyncio.get_running_loop(), contextvars.copy_context()
        return await loop.run_in_executor(pool, functools.partial(context.run, fn, *args, **kwargs))

    def shutdown(self) -> None:
        for pool in (self._pods, self._relist, self._pulls, self._probes):
            pool.shutdown(wait=False, cancel_futures=True)
