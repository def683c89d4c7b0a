"""Stopping a pod: SIGTERM, the grace period waited out on the event loop, then removal.

The grace period is Kubernetes' (``calculateEffectiveGracePeriod``):

* a pod being deleted gracefully gets ``deletionGracePeriodSeconds``, else its
  spec's ``terminationGracePeriodSeconds``;
* a pod whose object is already gone — force-deleted (``--grace-period=0
  --force``), or found in podman with no pod object at all (an orphan) — gets
  one second: its spec is no longer the user's wish, and Kubernetes kills
  orphans with a one-second override;
* the grace only ever shortens while a stop is under way (a force delete
  during a graceful one cuts it short), and no container gets less than
  two seconds between SIGTERM and SIGKILL (kuberuntime's
  ``minimumGracePeriodInSeconds``).

The wait is asynchronous: the podman calls are short (signal, list, remove)
and run in the kubelet's threads, and between them the stop sleeps on the
event loop, woken early when the pod's object changes. Ten pods stopping at
once therefore take one grace period, not ten, and never delay another pod's
start or status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from peapod.api import Pod
from peapod.kubelet.runtime import PodInfo, PodmanRuntime
from peapod.kubelet.threads import PodmanThreads

ORPHAN_GRACE_SECONDS = 1
MINIMUM_GRACE_SECONDS = 2
# Most containers exit at SIGTERM at once: look again soon, then less and less often.
POLL_SECONDS = (0.1, 0.25, 0.5, 1.0)


def grace_seconds(pod: Pod | None, *, object_gone: bool) -> int:
    """How long this pod's containers get between SIGTERM and SIGKILL."""
    if object_gone or pod is None:
        grace = ORPHAN_GRACE_SECONDS
    elif pod.metadata.deletion_grace_period_seconds is not None:
        grace = pod.metadata.deletion_grace_period_seconds
    else:
        grace = pod.spec.termination_grace_period_seconds
    return max(grace, MINIMUM_GRACE_SECONDS)


def _running(info: PodInfo | None) -> list[str]:
    return [c.id for c in (info.containers if info else []) if c.state == "running"]


# (container ids, seconds of grace left) -> their preStop hooks have run
PreStop = Callable[[list[str], float], Awaitable[None]]


async def terminate_pod(*, uid: str, runtime: PodmanRuntime, threads: PodmanThreads,
                        grace: Callable[[], int], wake: asyncio.Event | None = None,
                        on_stopping: Callable[[PodInfo], Awaitable[None]] | None = None,
                        order: Callable[[PodInfo], list[list[str]]] | None = None,
                        pre_stop: PreStop | None = None, log: Any) -> bool:
    """Stop and remove the podman pod of ``uid``; False when there was nothing to stop.

    ``grace`` is asked again after every wake, so a shorter grace (a force delete)
    takes effect at once; ``wake`` is set by whoever learns of such a change.
    ``order`` splits the running containers into groups stopped one after the
    other (the app containers, then the sidecars in reverse order), all within
    the one grace period; ``pre_stop`` runs the groups' preStop hooks before
    their SIGTERM.
    """
    info = await threads.call(runtime.get_pod, uid)
    running = _running(info)
    if info is not None and running:
        if on_stopping is not None:
            await on_stopping(info)
        started = asyncio.get_running_loop().time()
        for group in order(info) if order else [running]:
            group = [c for c in group if c in running]
            if group:
                await _stop_group(group, runtime=runtime, threads=threads, grace=grace,
                                  wake=wake, pre_stop=pre_stop, started=started, log=log)
    await threads.call(runtime.remove_pod, uid)
    return info is not None


async def stop_container(container_id: str, *, runtime: PodmanRuntime, threads: PodmanThreads,
                         grace: int, pre_stop: PreStop | None = None, log: Any) -> None:
    """Stop one container of a pod that stays: preStop, SIGTERM, the grace period, SIGKILL."""
    await _stop_group([container_id], runtime=runtime, threads=threads,
                      grace=lambda: max(grace, MINIMUM_GRACE_SECONDS), wake=None,
                      pre_stop=pre_stop, started=asyncio.get_running_loop().time(), log=log)
    await threads.call(runtime.signal_container, container_id, "KILL")


async def _stop_group(group: list[str], *, runtime: PodmanRuntime, threads: PodmanThreads,
                      grace: Callable[[], int], wake: asyncio.Event | None,
                      pre_stop: PreStop | None, started: float, log: Any) -> None:
    loop = asyncio.get_running_loop()
    if pre_stop is not None:
        left = grace() - (loop.time() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pre_stop(group, left), max(left, 0.0))
    for container_id in group:
        await threads.call(runtime.signal_container, container_id, "TERM")
    await _wait_for_exit(group, runtime=runtime, threads=threads, grace=grace, wake=wake,
                         log=log, started=started)


async def _wait_for_exit(running: list[str], *, runtime: PodmanRuntime, threads: PodmanThreads,
                         grace: Callable[[], int], wake: asyncio.Event | None, log: Any,
                         started: float | None = None) -> None:
    """Until the containers exit or the grace period (re-read on every wake) is over.

    The grace is counted from ``started`` (the stop's beginning: preStop hooks
    and earlier groups use it up), but a container always gets the minimum
    two seconds after its SIGTERM.
    """
    loop = asyncio.get_running_loop()
    signalled = loop.time()
    started = signalled if started is None else started
    granted = grace()
    log.info("pod_stopping", grace_seconds=granted, containers=len(running))
    polls = itertools.chain(POLL_SECONDS, itertools.repeat(POLL_SECONDS[-1]))
    next_poll = signalled + next(polls)
    while running:
        granted = min(granted, grace())
        end = max(started + granted, signalled + MINIMUM_GRACE_SECONDS)
        now = loop.time()
        if now >= end:
            log.info("grace_period_over", grace_seconds=granted, killed=len(running))
            return
        if now >= next_poll:  # one inspect per container still running: cheaper than a list
            running = await threads.call(runtime.still_running, running)
            next_poll = loop.time() + next(polls)
            continue
        await _sleep(min(end, next_poll) - now, wake)


async def _sleep(seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=seconds)
    wake.clear()
