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

from dataclasses import dataclass, field
from typing import Literal

from peapod.api import (
    Condition,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodStatus,
)
from peapod.kubelet.backoff import Backoff, go_duration
from peapod.kubelet.runtime import ContainerInfo, PodInfo

ActionKind = Literal["create_pod", "start", "remove_container"]


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


def should_restart(pod: Pod, exit_code: int | None) -> bool:
    policy = pod.spec.restart_policy
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def plan_pod(pod: Pod, observed: PodInfo | None, *, backoff: Backoff, now: float) -> Plan:
    """What to do next for a pod that should be running."""
    plan = Plan()
    if observed is None:
        plan.actions.append(Action("create_pod"))
    for container in pod.spec.containers:
        tries = attempts(observed, container.name)
        for old in tries[2:]:  # keep the current attempt and the one before it
            plan.actions.append(Action("remove_container", container.name,
                                       container_id=old.id))
        if not tries:
            plan.actions.append(Action("start", container.name, restart_count=0))
            continue
        latest = tries[0]
        if latest.state not in ("exited", "stopped"):
            continue
        if not should_restart(pod, latest.exit_code):
            continue
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
            continue
        plan.actions.append(Action("start", container.name,
                                   restart_count=latest.restart_count + 1,
                                   finished_at=finished))
    return plan


def _terminated(info: ContainerInfo) -> ContainerStateTerminated:
    code = info.exit_code if info.exit_code is not None else 0
    reason = "OOMKilled" if info.oom_killed else ("Completed" if code == 0 else "Error")
    return ContainerStateTerminated(exit_code=code, reason=reason, started_at=info.started_at,
                                    finished_at=info.finished_at,
                                    container_id=f"podman://{info.id}")


def container_status(pod: Pod, name: str, image: str, observed: PodInfo | None,
                     waiting: tuple[str, str] | None) -> ContainerStatus:
    tries = attempts(observed, name)
    status = ContainerStatus(name=name, image=image)
    if not tries:
        reason, message = waiting or ("ContainerCreating", None)
        status.state = ContainerState(waiting=ContainerStateWaiting(reason=reason,
                                                                    message=message))
        return status
    latest = tries[0]
    status.restart_count = latest.restart_count
    status.container_id = f"podman://{latest.id}"
    status.image_id = latest.image_id
    if len(tries) > 1 and tries[1].state in ("exited", "stopped"):
        status.last_state = ContainerState(terminated=_terminated(tries[1]))
    if latest.state == "running":
        status.state = ContainerState(running=ContainerStateRunning(started_at=latest.started_at))
        status.ready = True
        status.started = True
    elif latest.state in ("exited", "stopped"):
        if waiting:
            status.state = ContainerState(waiting=ContainerStateWaiting(reason=waiting[0],
                                                                        message=waiting[1]))
            status.last_state = ContainerState(terminated=_terminated(latest))
        else:
            status.state = ContainerState(terminated=_terminated(latest))
        status.started = False
    else:
        status.state = ContainerState(waiting=ContainerStateWaiting(reason="ContainerCreating"))
    return status


def pod_phase(pod: Pod, statuses: list[ContainerStatus]) -> str:
    """Kubernetes' getPhase, for pods without init containers."""
    waiting = running = stopped = succeeded = failed = 0
    for st in statuses:
        if st.state.running:
            running += 1
        elif st.state.terminated:
            stopped += 1
            if st.state.terminated.exit_code == 0:
                succeeded += 1
            else:
                failed += 1
        elif st.last_state.terminated:
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        policy = pod.spec.restart_policy
        if policy == "Always":
            return "Running"
        if policy == "OnFailure":
            return "Succeeded" if failed == 0 and stopped == succeeded else "Running"
        return "Succeeded" if failed == 0 else "Failed"
    return "Pending"


def pod_status(pod: Pod, observed: PodInfo | None, *, waiting: dict[str, tuple[str, str]],
               host_ip: str | None, start_time: str | None,
               previous: PodStatus | None = None, now: str) -> PodStatus:
    statuses = [container_status(pod, c.name, c.image, observed, waiting.get(c.name))
                for c in pod.spec.containers]
    all_ready = all(st.ready for st in statuses)
    ready = "True" if all_ready else "False"
    reason = None if all_ready else "ContainersNotReady"
    old = {c.type: c for c in (previous.conditions if previous and previous.conditions else [])}

    def condition(kind: str, value: str, why: str | None = None) -> Condition:
        before = old.get(kind)
        since = before.last_transition_time if before and before.status == value else now
        return Condition(type=kind, status=value, last_transition_time=since,  # type: ignore[arg-type]
                         reason=why)

    return PodStatus(
        phase=pod_phase(pod, statuses),  # type: ignore[arg-type]
        conditions=[condition("Initialized", "True"), condition("Ready", ready, reason),
                    condition("ContainersReady", ready, reason),
                    condition("PodScheduled", "True")],
        host_ip=host_ip,
        pod_ip=observed.ip if observed else None,
        start_time=start_time,
        container_statuses=statuses,
    )
