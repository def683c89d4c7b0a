"""Liveness, readiness and startup probes: one timer per pod on the kubelet's event loop.

Kubernetes' prober (``pkg/kubelet/prober``) keeps a worker per container and
probe; here each pod has one asyncio task that sleeps until the earliest of
its probes is due, runs the due ones side by side, and sleeps again. No
thread waits for a period, and an idle pod costs one sleeping task.

The rules are the prober's:

* a probe is first run ``initialDelaySeconds`` after the container started,
  then every ``periodSeconds``, each run bounded by ``timeoutSeconds``;
* a result changes only after ``failureThreshold`` failures or
  ``successThreshold`` successes in a row;
* readiness starts as not ready, liveness as alive, startup as not started;
  while a startup probe has not succeeded, liveness and readiness are not
  run, and once it has succeeded it is not run again;
* while the container runtime is down (podman's service gone: the node is
  NotReady, ``paused`` says so), no probe runs and none acts, as Kubernetes'
  kubelet skips probes while its runtime is not ready; an exec probe that
  finds podman gone is no result, not a failure. Each resumes at its next
  period once podman answers again, with its counts as they were, so the
  outage restarts nothing;
* every failed run is an ``Unhealthy`` event (``Liveness probe failed: …``);
  a liveness or startup probe that reaches its threshold asks the kubelet
  to kill the container (``on_failure``) and holds until a new container
  replaces it.

What the probes say reaches the pod's status as a ``ProbeView`` (which
running containers are not started or not ready), and a change wakes the
pod's worker through ``on_change`` so it is reported at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from peapod.api import Container, Pod, parse_rfc3339
from peapod.api.probe import Probe, ProbeKind
from peapod.kubelet.actions import (
    ExecFn,
    Outcome,
    Target,
    http_get,
    named_ports,
    run_exec,
    tcp_socket,
)
from peapod.kubelet.reconcile import ProbeView, attempts, is_sidecar
from peapod.kubelet.runtime import PodInfo, RuntimeDown

KINDS: tuple[ProbeKind, ...] = ("startup", "liveness", "readiness")

# (pod, container name, container id, kind, grace seconds) -> None
FailureFn = Callable[[Pod, str, str, ProbeKind, int], Awaitable[None]]
EventFn = Callable[[Pod, str, str], Awaitable[None]]  # (pod, reason, message)


@dataclass
class _Worker:
    kind: ProbeKind
    probe: Probe
    container: Container
    container_id: str
    due: float  # loop time of the next run
    result: bool | None  # None: startup not (yet) succeeded
    last: bool | None = None
    run: int = 0
    on_hold: bool = False  # killed after a failure: wait for the next container


@dataclass
class _PodProbes:
    pod: Pod
    ip: str | None
    workers: dict[tuple[str, ProbeKind], _Worker] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def probes_of(container: Container) -> dict[ProbeKind, Probe]:
    found = {"startup": container.startup_probe, "liveness": container.liveness_probe,
             "readiness": container.readiness_probe}
    return {kind: probe for kind, probe in found.items() if probe is not None}  # type: ignore[misc]


def probed_containers(pod: Pod) -> list[Container]:
    """The app containers and sidecars: the only ones that may have probes."""
    sidecars = [c for c in pod.spec.init_containers or [] if is_sidecar(c)]
    return [c for c in [*sidecars, *pod.spec.containers] if probes_of(c)]


class ProbeManager:
    def __init__(self, *, exec_fn: ExecFn, on_change: Callable[[Pod], None],
                 on_failure: FailureFn, event: EventFn,
                 clock: Callable[[], float] = time.time, host_ip: str | None = None,
                 paused: Callable[[], bool] = lambda: False, log: Any) -> None:
        self.exec_fn = exec_fn
        self.paused = paused  # the runtime is down: no probe runs
        self.host_ip = host_ip  # the pod IP of a hostNetwork pod, as its status says
        self.on_change = on_change
        self.on_failure = on_failure
        self.event = event
        self.clock = clock  # wall clock: podman's start times are wall-clock
        self.log = log
        self.pods: dict[str, _PodProbes] = {}

    def view(self, uid: str) -> ProbeView:
        state = self.pods.get(uid)
        if state is None:
            return ProbeView()
        not_started = {w.container_id for w in state.workers.values()
                       if w.kind == "startup" and w.result is not True}
        not_ready = {w.container_id for w in state.workers.values()
                     if w.kind == "readiness" and w.result is not True}
        return ProbeView(not_started=frozenset(not_started),
                         not_ready=frozenset(not_ready | not_started))

    def sync(self, pod: Pod, observed: PodInfo | None) -> None:
        """Probe the running containers of ``pod`` that have probes; forget the others."""
        uid = pod.metadata.uid or ""
        containers = probed_containers(pod)
        if not containers:
            self.forget(uid)
            return
        state = self.pods.get(uid)
        if state is None:
            state = self.pods[uid] = _PodProbes(pod=pod, ip=None)
        state.pod = pod
        state.ip = self.host_ip if pod.spec.host_network else (observed.ip if observed else None)
        wanted: set[tuple[str, ProbeKind]] = set()
        loop_now, wall_now = asyncio.get_running_loop().time(), self.clock()
        for container in containers:
            tries = attempts(observed, container.name)
            if not tries or tries[0].state != "running":
                continue
            latest = tries[0]
            started = _started_ts(latest.started_at) or wall_now
            for kind, probe in probes_of(container).items():
                key = (latest.id, kind)
                wanted.add(key)
                if key not in state.workers:
                    delay = max(0.0, started + (probe.initial_delay_seconds or 0) - wall_now)
                    state.workers[key] = _Worker(
                        kind=kind, probe=probe, container=container, container_id=latest.id,
                        due=loop_now + delay, result=_initial(kind))
                    state.changed.set()
        for key in [k for k in state.workers if k not in wanted]:
            del state.workers[key]
        if state.workers and (state.task is None or state.task.done()):
            state.task = asyncio.create_task(self._loop(uid), name=f"probes:{uid}")

    def forget(self, uid: str) -> None:
        state = self.pods.pop(uid, None)
        if state is not None and state.task is not None:
            state.task.cancel()

    def close(self) -> None:
        for uid in list(self.pods):
            self.forget(uid)

    async def _loop(self, uid: str) -> None:
        loop = asyncio.get_running_loop()
        while (state := self.pods.get(uid)) is not None and state.workers:
            now = loop.time()
            due = [w for w in state.workers.values() if w.due <= now]
            if not due:
                wait = min(w.due for w in state.workers.values()) - now
                state.changed.clear()
                if math.isinf(wait):
                    await state.changed.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.changed.wait(), wait)
                continue
            try:
                await asyncio.gather(*(self._probe(state, w) for w in due))
            except Exception:  # a probe's bug must not end the pod's probing
                self.log.exception("probe_failed", uid=uid)
                for w in due:
                    w.due = max(w.due, loop.time() + w.probe.period_seconds)

    async def _probe(self, state: _PodProbes, w: _Worker) -> None:
        loop = asyncio.get_running_loop()
        w.due = loop.time() + w.probe.period_seconds
        if w.on_hold or (w.kind == "startup" and w.result):
            w.due = math.inf  # done, or waiting for the next container
            return
        startup = state.workers.get((w.container_id, "startup"))
        if w.kind != "startup" and startup is not None and not startup.result:
            return  # startup gates liveness and readiness
        if self.paused():
            return  # the runtime is down: tried again next period
        outcome = await self._run(state, w)
        if state.workers.get((w.container_id, w.kind)) is not w:
            return  # the container went away while the probe ran
        if outcome is None or self.paused():
            return  # podman went away meanwhile: no result
        await self._record(state, w, outcome)

    async def _run(self, state: _PodProbes, w: _Worker) -> Outcome | None:
        """The probe's outcome; None if podman did not answer an exec probe."""
        probe, timeout = w.probe, float(w.probe.timeout_seconds)
        target = Target(container_id=w.container_id, pod_ip=state.ip,
                        ports=named_ports(w.container))
        if probe.exec is not None:
            down: list[RuntimeDown] = []

            async def run(container_id: str, argv: list[str]) -> tuple[int, bytes]:
                try:
                    return await self.exec_fn(container_id, argv)
                except RuntimeDown as exc:
                    down.append(exc)
                    raise
            outcome = await run_exec(probe.exec, target, run=run, timeout=timeout)
            return None if down else outcome
        if probe.http_get is not None:
            return await http_get(probe.http_get, target, timeout=timeout)
        if probe.tcp_socket is not None:
            return await tcp_socket(probe.tcp_socket, target, timeout=timeout)
        if probe.grpc is not None:
            if state.ip is None:
                return Outcome(False, "the pod has no IP address yet")
            from peapod.kubelet import grpcprobe  # HTTP/2 (h2): loaded only for a grpc probe
            return await grpcprobe.check(probe.grpc, state.ip, timeout=timeout)
        return Outcome(False, "no handler")  # pragma: no cover - validation refuses it

    async def _record(self, state: _PodProbes, w: _Worker, outcome: Outcome) -> None:
        pod = state.pod
        if outcome.ok == w.last:
            w.run += 1
        else:
            w.last, w.run = outcome.ok, 1
        if not outcome.ok:
            await self.event(pod, "Unhealthy",
                             f"{w.kind.capitalize()} probe failed: {outcome.message}")
        threshold = w.probe.success_threshold if outcome.ok else w.probe.failure_threshold
        if w.run < threshold:
            return
        result = outcome.ok if (outcome.ok or w.kind != "startup") else None
        if result != w.result:
            w.result = result
            self.on_change(pod)
        if not outcome.ok and w.kind in ("liveness", "startup"):
            w.on_hold, w.run = True, 0
            w.due = math.inf
            grace = w.probe.termination_grace_period_seconds or \
                pod.spec.termination_grace_period_seconds
            await self.on_failure(pod, w.container.name, w.container_id, w.kind, grace)


def _initial(kind: ProbeKind) -> bool | None:
    return {"liveness": True, "readiness": False, "startup": None}[kind]


def _started_ts(value: str | None) -> float | None:
    return parse_rfc3339(value).timestamp() if value else None
