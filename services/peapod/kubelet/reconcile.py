"""Reconcile decisions: desired pod against what podman shows, as pure functions.

The kubelet is level-triggered: whatever event woke it, it compares the pod
it should run (from its partition) with the podman pod labelled with that
pod's uid, and decides the next steps. Keeping the decision pure (no I/O, the
clock passed in) lets the tests cover every case — first start, crash,
back-off, restart policies, deletion — without podman, while the agent that
performs the steps runs against the real thing.

Each restart creates a new container (``restartCount`` + 1 in its labels) and
keeps the previous attempt for ``lastState``, as Kubernetes does; older
attempts are removed. Crash-loop back-off is counted from the exited
container's finish time (Kubernetes' ``doBackOff``), and taken back from the
labels of that container when the kubelet has just restarted and remembers
nothing.

Why a container is not running — its start failed, its image cannot be
pulled, its sandbox cannot be created, it is backing off — is the caller's
*reason cache* (Kubernetes' ``ReasonCache``), passed to ``pod_status`` as
``waiting``: the status shows it until the container runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from peapod.api import (
    Condition,
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodStatus,
)
from peapod.api.pod import HostIP, PodIP
from peapod.api.resources import qos_class
from peapod.kubelet.backoff import Backoff, go_duration
from peapod.kubelet.runtime import ContainerInfo, PodInfo

ActionKind = Literal["create_pod", "start", "remove_container", "stop"]


@dataclass(frozen=True)
class ProbeView:
    """What the probes say of the running containers, by container id (probes.py)."""

    not_started: frozenset[str] = frozenset()  # startup probe not (yet) succeeded
    not_ready: frozenset[str] = frozenset()  # readiness not (yet) succeeded, or not started



@dataclass(frozen=True)
class Action:
    kind: ActionKind
    container: str | None = None
    restart_count: int = 0
    container_id: str | None = None
    finished_at: float | None = None  # the previous attempt's exit (Unix s), for back-off


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    # container name -> (reason, message) for containers deliberately not started now
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)


def backoff_key(pod: Pod, container: str) -> str:
    return f"{pod.metadata.uid}/{container}"


def attempts(observed: PodInfo | None, name: str) -> list[ContainerInfo]:
    """Every attempt of one container, newest first."""
    if observed is None:
        return []
    found = [c for c in observed.containers if c.name == name]
    return sorted(found, key=lambda c: c.restart_count, reverse=True)


def is_sidecar(container: Container) -> bool:
    """An init container with ``restartPolicy: Always`` (Kubernetes' restartable init container)."""
    return container.restart_policy == "Always"


def container_spec(pod: Pod, name: str) -> Container:
    """The init or app container called ``name``."""
    return next(c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                if c.name == name)


def field_path(pod: Pod, name: str) -> str:
    """An event's fieldPath for a container: ``spec.containers{web}``."""
    init = any(c.name == name for c in pod.spec.init_containers or [])
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


def should_restart(pod: Pod, exit_code: int | None) -> bool:
    policy = pod.spec.restart_policy
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def should_restart_init(pod: Pod, container: Container, exit_code: int | None) -> bool:
    """A sidecar always; an init container that failed unless the pod's policy is Never."""
    if is_sidecar(container):
        return True
    return exit_code != 0 and pod.spec.restart_policy != "Never"


# podman's states of a container that was created and never started
NEVER_STARTED = frozenset({"created", "configured", "initialized"})


def _exited(info: ContainerInfo) -> bool:
    return info.state in ("exited", "stopped")


def plan_pod(pod: Pod, observed: PodInfo | None, *, backoff: Backoff, now: float,
             probes: ProbeView | None = None) -> Plan:
    """What to do next for a pod that should be running.

    Init containers run one at a time, each to completion, before any app
    container (a sidecar only has to be started: running, and its startup
    probe passed); once an app container has run the pod is initialized for
    good and only sidecars are restarted. When every app container has
    finished for good, or an init container failed for good, the sidecars
    are stopped and not restarted (the pod is done).
    """
    plan = Plan()
    if observed is None:
        plan.actions.append(Action("create_pod"))
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        for old in attempts(observed, container.name)[2:]:  # keep the current and previous
            plan.actions.append(Action("remove_container", container.name,
                                       container_id=old.id))
    if finished(pod, observed):
        _stop_sidecars(pod, observed, plan)
        return plan
    if _plan_init(pod, observed, plan, backoff=backoff, now=now, probes=probes or ProbeView()):
        for container in pod.spec.containers:
            _plan_container(pod, container, observed, plan, backoff=backoff, now=now,
                            restart=should_restart)
    return plan


def finished(pod: Pod, observed: PodInfo | None) -> bool:
    """Is the pod done: an init container or every app container exited, never to restart?"""
    for container in pod.spec.init_containers or []:
        tries = attempts(observed, container.name)
        if (not is_sidecar(container) and tries and _exited(tries[0])
                and tries[0].exit_code != 0
                and not should_restart_init(pod, container, tries[0].exit_code)):
            return True
    for container in pod.spec.containers:
        tries = attempts(observed, container.name)
        if not tries or not _exited(tries[0]) or should_restart(pod, tries[0].exit_code):
            return False
    return True


def _stop_sidecars(pod: Pod, observed: PodInfo | None, plan: Plan) -> None:
    for container in pod.spec.init_containers or []:
        tries = attempts(observed, container.name)
        if is_sidecar(container) and tries and tries[0].state == "running":
            plan.actions.append(Action("stop", container.name, container_id=tries[0].id))


def initialized(pod: Pod, observed: PodInfo | None) -> bool:
    """Has an app container been created (the pod got past its init containers)?"""
    return any(attempts(observed, c.name) for c in pod.spec.containers)


def _init_restart(container: Container) -> Callable[[Pod, int | None], bool]:
    return lambda pod, exit_code: should_restart_init(pod, container, exit_code)


def _plan_init(pod: Pod, observed: PodInfo | None, plan: Plan, *, backoff: Backoff,
               now: float, probes: ProbeView) -> bool:
    """Plan the init containers; True when the app containers may run."""
    done = initialized(pod, observed)
    for container in pod.spec.init_containers or []:
        if done and not is_sidecar(container):
            continue
        tries = attempts(observed, container.name)
        _plan_container(pod, container, observed, plan, backoff=backoff, now=now,
                        restart=_init_restart(container))
        if done:
            continue
        latest = tries[0] if tries else None
        if latest is None:
            return False
        if is_sidecar(container):
            if latest.state != "running" or latest.id in probes.not_started:
                return False
        elif not (_exited(latest) and latest.exit_code == 0):
            return False
    return True


def _plan_container(pod: Pod, container: Container, observed: PodInfo | None, plan: Plan, *,
                    backoff: Backoff, now: float,
                    restart: Callable[[Pod, int | None], bool]) -> None:
    """Start a container never run, or restart an exited one once its back-off is over."""
    tries = attempts(observed, container.name)
    if not tries:
        plan.actions.append(Action("start", container.name, restart_count=0))
        return
    latest = tries[0]
    if latest.state in NEVER_STARTED:
        # created but never started: the kubelet died between podman's create and start.
        # Kubernetes restarts a container in the created state; the attempt is made again.
        plan.actions.append(Action("remove_container", container.name, container_id=latest.id))
        plan.actions.append(Action("start", container.name, restart_count=latest.restart_count,
                                   finished_at=tries[1].finished_ts if len(tries) > 1 else None))
        return
    if not _exited(latest) or not restart(pod, latest.exit_code):
        return
    key = backoff_key(pod, container.name)
    if latest.backoff is not None:  # what the kubelet recorded when it started this attempt
        backoff.restore(key, latest.backoff)
    finished = latest.finished_ts if latest.finished_ts is not None else now
    if backoff.in_backoff_since(key, finished, now=now):
        plan.waiting[container.name] = (
            "CrashLoopBackOff",
            f"back-off {go_duration(backoff.delay(key))} restarting failed "
            f"container={container.name} "
            f"pod={pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})",
        )
        return
    plan.actions.append(Action("start", container.name,
                               restart_count=latest.restart_count + 1,
                               finished_at=finished))


def _terminated(info: ContainerInfo) -> ContainerStateTerminated:
    code = info.exit_code if info.exit_code is not None else 0
    reason = "OOMKilled" if info.oom_killed else ("Completed" if code == 0 else "Error")
    return ContainerStateTerminated(exit_code=code, reason=reason, message=info.message,
                                    started_at=info.started_at,
                                    finished_at=info.finished_at,
                                    container_id=f"podman://{info.id}")


def container_status(pod: Pod, name: str, image: str, observed: PodInfo | None,
                     waiting: tuple[str, str] | None, *, init: bool = False,
                     probes: ProbeView | None = None) -> ContainerStatus:
    """One entry of ``containerStatuses`` (or, with ``init``, ``initContainerStatuses``)."""
    tries = attempts(observed, name)
    status = ContainerStatus(name=name, image=image)
    if not tries:
        # Kubernetes' defaultWaitingState: PodInitializing in a pod with init containers
        default = "PodInitializing" if pod.spec.init_containers else "ContainerCreating"
        reason, message = waiting or (default, None)
        status.state = ContainerState(waiting=ContainerStateWaiting(reason=reason,
                                                                    message=message))
        status.started = False if init else None
        return status
    latest = tries[0]
    status.restart_count = latest.restart_count
    status.container_id = f"podman://{latest.id}"
    status.image_id = latest.image_id
    if len(tries) > 1 and _exited(tries[1]):
        status.last_state = ContainerState(terminated=_terminated(tries[1]))
    if latest.state == "running":
        status.state = ContainerState(running=ContainerStateRunning(started_at=latest.started_at))
        # an init container that runs to completion is ready only once it completed;
        # a container with a startup or readiness probe once the probe says so
        view = probes or ProbeView()
        status.ready = (not init or is_sidecar(container_spec(pod, name))) and \
            latest.id not in view.not_ready
        status.started = latest.id not in view.not_started
    elif _exited(latest):
        if waiting:
            status.state = ContainerState(waiting=ContainerStateWaiting(reason=waiting[0],
                                                                        message=waiting[1]))
            status.last_state = ContainerState(terminated=_terminated(latest))
        else:
            status.state = ContainerState(terminated=_terminated(latest))
            # a completed init container is ready (Kubernetes' prober manager)
            status.ready = init and latest.exit_code == 0
        status.started = False
    else:
        status.state = ContainerState(waiting=ContainerStateWaiting(reason="ContainerCreating"))
        status.started = False
    return status


def _init_phase_counts(pod: Pod, init_statuses: list[ContainerStatus]) -> tuple[int, int, int, int]:
    """(pending, failed) init containers, and (running, waiting) sidecars, as getPhase counts."""
    pending = failed = running = waiting = 0
    specs = {c.name: c for c in pod.spec.init_containers or []}
    for st in init_statuses:
        terminated, last = st.state.terminated, st.last_state.terminated
        if is_sidecar(specs[st.name]):
            if st.state.running:
                running += 1
                pending += 0 if st.started else 1
            elif not terminated and not last:
                pending, waiting = pending + 1, waiting + 1
        elif terminated or (st.state.waiting and last):
            code = terminated.exit_code if terminated else last.exit_code  # type: ignore[union-attr]
            failed += 1 if code != 0 else 0
        else:
            pending += 1
    return pending, failed, running, waiting


def pod_phase(pod: Pod, statuses: list[ContainerStatus],
              init_statuses: list[ContainerStatus] | None = None) -> str:
    """Kubernetes' getPhase, init containers and sidecars included."""
    pending_init, failed_init, running, waiting = _init_phase_counts(pod, init_statuses or [])
    stopped = succeeded = 0
    started_any = False
    for st in statuses:
        if st.state.running:
            running += 1
        elif st.state.terminated:
            stopped += 1
            succeeded += 1 if st.state.terminated.exit_code == 0 else 0
        elif st.last_state.terminated:
            stopped += 1
        else:
            waiting += 1
        started_any = started_any or bool(st.container_id)
    policy = pod.spec.restart_policy
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if (pending_init > 0 and not started_any) or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


_TERMINAL_REASONS = {"Succeeded": "PodCompleted", "Failed": "PodFailed"}


def _condition_of(old: dict[str, Condition], now: str) -> Callable[..., Condition]:
    def condition(kind: str, value: str, why: str | None = None,
                  message: str | None = None) -> Condition:
        before = old.get(kind)
        since = before.last_transition_time if before and before.status == value else now
        return Condition(type=kind, status=value, last_transition_time=since,  # type: ignore[arg-type]
                         reason=why, message=message)
    return condition


def _not_initialized(pod: Pod, init_statuses: list[ContainerStatus]) -> list[str]:
    """The init containers not yet done: a sidecar not started, another not completed."""
    specs = {c.name: c for c in pod.spec.init_containers or []}
    incomplete = []
    for st in init_statuses:
        terminated = st.state.terminated
        done = st.started if is_sidecar(specs[st.name]) else (
            terminated is not None and terminated.exit_code == 0)
        if not done:
            incomplete.append(st.name)
    return incomplete


def pod_status(pod: Pod, observed: PodInfo | None, *, waiting: dict[str, tuple[str, str]],
               host_ip: str | None, start_time: str | None,
               previous: PodStatus | None = None, now: str,
               probes: ProbeView | None = None,
               terminal: tuple[str, str] | None = None) -> PodStatus:
    """The pod's status; ``terminal`` (reason, message) when the kubelet failed it for good."""
    init_statuses = [container_status(pod, c.name, c.image, observed, waiting.get(c.name),
                                      init=True, probes=probes)
                     for c in pod.spec.init_containers or []]
    statuses = [container_status(pod, c.name, c.image, observed, waiting.get(c.name),
                                 probes=probes)
                for c in pod.spec.containers]
    phase = "Failed" if terminal else pod_phase(pod, statuses, init_statuses)
    sidecars = [st for st in init_statuses
                if is_sidecar(container_spec(pod, st.name))]
    unready = [st.name for st in [*sidecars, *statuses] if not st.ready]
    ready, reason, message = "True", None, None
    if phase in _TERMINAL_REASONS:  # Kubernetes: a finished pod is never ready
        ready, reason = "False", _TERMINAL_REASONS[phase]
    elif unready:
        ready, reason = "False", "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
    incomplete = [] if initialized(pod, observed) or phase == "Succeeded" else \
        _not_initialized(pod, init_statuses)
    condition = _condition_of({c.type: c for c in (previous.conditions if previous and
                                                    previous.conditions else [])}, now)
    pod_ip = host_ip if pod.spec.host_network else (observed.ip if observed else None)
    return PodStatus(
        phase=phase,  # type: ignore[arg-type]
        conditions=[
            condition("Initialized", "False", "ContainersNotInitialized",
                      f"containers with incomplete status: [{' '.join(incomplete)}]")
            if incomplete else condition("Initialized", "True",
                                         "PodCompleted" if phase == "Succeeded" else None),
            condition("Ready", ready, reason, message),
            condition("ContainersReady", ready, reason, message),
            condition("PodScheduled", "True")],
        host_ip=host_ip,
        host_ips=[HostIP(ip=host_ip)] if host_ip else None,
        pod_ip=pod_ip,
        pod_ips=[PodIP(ip=pod_ip)] if pod_ip else None,
        qos_class=qos_class(pod),  # type: ignore[arg-type]
        start_time=start_time,
        init_container_statuses=init_statuses or None,
        container_statuses=statuses,
        reason=terminal[0] if terminal else None,
        message=terminal[1] if terminal else None,
    )
