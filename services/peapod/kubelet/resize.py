"""In-place resize on the node (Kubernetes 1.33), as pure decisions for the agent.

A pod's containers' cpu and memory are *allocated* when the kubelet first runs the pod;
a resize (``pods/resize``, checked by the apiserver, ``api/resize.py``) changes the spec,
and the kubelet then:

* allocates the new requests if they fit beside the node's other pods
  (``admit.shortage``); if they can never fit the node it says ``PodResizePending``
  ``Infeasible`` "Node didn't have enough capacity: memory, requested: …, capacity: …",
  if they do not fit now ``Deferred`` with the admission message, and retries at each
  sync;
* *actuates* what it allocated on each running container: through podman's container
  update (``POST /containers/{id}/update``, podman 4.3: the cgroup's cpu quota and memory
  limit) where the container's ``resizePolicy`` for every changed resource is
  ``NotRequired``, else by restarting the container (``RestartContainer``), which is then
  created with the allocated resources. Until every running container has what was
  allocated the pod shows ``PodResizeInProgress`` (reason ``Error`` and podman's message
  if an update failed);
* shows each container's ``resources`` (what it runs with) and ``allocatedResources``
  (the requests allocated) in its status.

Containers are created with what was allocated, and labelled with it, so a restarted
kubelet knows what a container was created with; an update made since is made again
(podman 4.3 does not record updates, and making one twice is harmless).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from peapod.api import Condition, Container, Pod
from peapod.api.pod import ResourceRequirements
from peapod.api.quantity import cpu_millis, memory_bytes
from peapod.api.resize import RESIZABLE, cpu_memory, restart_policy
from peapod.kubelet.admit import requested

Resources = dict[str, dict[str, str]]  # {"requests": {...}, "limits": {...}} of cpu and memory


def wanted(container: Container) -> Resources:
    """The container's cpu and memory requests and limits, as its spec says (normalized)."""
    res = container.resources
    return {section: {k: str(v) for k, v in cpu_memory(getattr(res, section) if res else None)
                      .items()} for section in ("requests", "limits")}


def pod_wanted(pod: Pod) -> dict[str, Resources]:
    return {c.name: wanted(c) for c in pod.spec.containers}


def label(resources: Resources) -> str:
    return json.dumps(resources, sort_keys=True, separators=(",", ":"))


def from_label(text: str | None) -> Resources | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _same(a: Mapping[str, str], b: Mapping[str, str], name: str) -> bool:
    convert = cpu_millis if name == "cpu" else memory_bytes
    return (name in a) == (name in b) and (name not in a or convert(a[name]) == convert(b[name]))


def changed(actual: Resources, target: Resources) -> set[str]:
    """The resources (cpu, memory) whose request or limit differs."""
    return {name for name in RESIZABLE for section in ("requests", "limits")
            if not _same(actual.get(section, {}), target.get(section, {}), name)}


def needs_restart(container: Container, resources: set[str]) -> bool:
    return any(restart_policy(container, name) == "RestartContainer" for name in resources)


def with_allocated(pod: Pod, allocated: dict[str, Resources]) -> Pod:
    """``pod`` with its containers' cpu and memory as allocated (what a new container of
    it is created with while a resize is pending)."""
    if pod_wanted(pod) == allocated:
        return pod
    copy = pod.model_copy(deep=True)
    for container in copy.spec.containers:
        if container.name not in allocated:
            continue
        res = container.resources or ResourceRequirements()
        for section in ("requests", "limits"):
            others = {k: v for k, v in (getattr(res, section) or {}).items() if k not in RESIZABLE}
            setattr(res, section, {**others, **allocated[container.name][section]} or None)
        container.resources = res if res.requests or res.limits else None
    return copy


def infeasible(pod: Pod, allocatable: Mapping[str, int]) -> str | None:
    """Kubernetes' message when the pod's new requests exceed the node's allocatable."""
    want = requested(pod)
    for name in ("memory", "cpu"):
        if want[name] > allocatable.get(name, 0):
            return (f"Node didn't have enough capacity: {name}, requested: {want[name]}, "
                    f"capacity: {allocatable.get(name, 0)}")
    return None


def status_resources(resources: Resources) -> ResourceRequirements:
    return ResourceRequirements(requests=dict(resources["requests"]) or None,
                                limits=dict(resources["limits"]) or None)


def conditions(pending: tuple[str, str] | None, in_progress: bool, error: str | None,
               previous: Mapping[str, Condition], now: str) -> list[Condition]:
    """PodResizePending and PodResizeInProgress, as Kubernetes 1.33 reports them."""
    found = []
    if pending is not None:
        found.append(_condition("PodResizePending", pending[0], pending[1], previous, now))
    if in_progress or error:
        found.append(_condition("PodResizeInProgress", "Error" if error else None, error,
                                previous, now))
    return found


def _condition(kind: str, reason: str | None, message: str | None,
               previous: Mapping[str, Condition], now: str) -> Condition:
    before = previous.get(kind)
    since = before.last_transition_time if before and before.status == "True" else now
    return Condition(type=kind, status="True", reason=reason, message=message,
                     last_transition_time=since)
