"""A pod's compute resources as Kubernetes counts them: container requests aggregated
(init containers and sidecars included), pod-level ``spec.resources`` (KEP-2837,
``PodLevelResources``), and the QoS class.

Pod-level requests and limits, where set, take precedence over what the containers
add up to, for ``cpu`` and ``memory`` (the only resources Kubernetes supports at pod
level besides hugepages, which peapod has none of). A pod-level request that is not
set defaults to the pod-level limit when no container requests that resource
(``default_pod_requests``), as in Kubernetes' defaulting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peapod.api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes, parse_quantity

if TYPE_CHECKING:
    from peapod.api.pod import Container, Pod, PodSpec

POD_LEVEL_RESOURCES = ("cpu", "memory")

# What scoring counts for a container that requests nothing, as Kubernetes'
# scheduler does (DefaultMilliCPURequest, DefaultMemoryRequest): otherwise
# pods without requests all weigh zero and pile onto the first node.
NON_ZERO_CPU_MILLIS = 100
NON_ZERO_MEMORY = 200 * 1024 * 1024


@dataclass(frozen=True)
class Amounts:
    """CPU in millicores and memory in bytes."""

    cpu: int = 0
    memory: int = 0

    def get(self, name: str) -> int:
        return self.cpu if name == "cpu" else self.memory

    def text(self, name: str) -> str:
        return format_cpu(self.cpu) if name == "cpu" else format_memory(self.memory)


def amount(name: str, value: str | int | float) -> int:
    return cpu_millis(value) if name == "cpu" else memory_bytes(value)


def _container(container: Container, *, non_zero: bool) -> tuple[int, int, set[str]]:
    """A container's cpu and memory requests (a limit without a request counts as the
    request) and which of the two it sets."""
    res = container.resources
    requests = dict((res.limits or {}) if res else {})
    requests.update((res.requests or {}) if res else {})
    cpu = cpu_millis(requests["cpu"]) if "cpu" in requests else \
        (NON_ZERO_CPU_MILLIS if non_zero else 0)
    mem = memory_bytes(requests["memory"]) if "memory" in requests else \
        (NON_ZERO_MEMORY if non_zero else 0)
    return cpu, mem, {k for k in ("cpu", "memory") if k in requests}


def container_requests(spec: PodSpec, *, non_zero: bool = False) -> Amounts:
    """What the containers ask for together: the app containers and the sidecars run
    together, each init container runs beside the sidecars started before it, and the
    pod asks for the larger of the two, resource by resource (Kubernetes' PodRequests).

    With ``non_zero`` (the scheduler's scoring only), a container that requests no CPU
    or memory counts as 100m and 200Mi."""
    apps = [_container(c, non_zero=non_zero) for c in spec.containers]
    cpu, mem = sum(c for c, _, _ in apps), sum(m for _, m, _ in apps)
    side_cpu = side_mem = init_cpu = init_mem = 0
    for container in spec.init_containers or []:
        c, m, _ = _container(container, non_zero=non_zero)
        if container.restart_policy == "Always":
            side_cpu, side_mem = side_cpu + c, side_mem + m
            c, m = 0, 0
        init_cpu, init_mem = max(init_cpu, side_cpu + c), max(init_mem, side_mem + m)
    return Amounts(max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem))


def pod_requests(pod: Pod, *, non_zero: bool = False) -> Amounts:
    """What the scheduler counts for the pod: its pod-level requests where set, else
    what its containers add up to."""
    total = container_requests(pod.spec, non_zero=non_zero)
    level = pod_level(pod.spec, "requests")
    return Amounts(level.get("cpu", total.cpu), level.get("memory", total.memory))


def pod_level(spec: PodSpec, section: str) -> dict[str, int]:
    """The pod-level ``requests`` or ``limits`` of cpu and memory, as amounts."""
    values = getattr(spec.resources, section, None) if spec.resources else None
    return {k: amount(k, v) for k, v in (values or {}).items() if k in POD_LEVEL_RESOURCES}


def _requested_by_a_container(spec: PodSpec, name: str) -> bool:
    """Does a container request ``name`` (or limit it, which defaults its request)?"""
    return any(name in ((c.resources.requests or {}) if c.resources else {})
               or name in ((c.resources.limits or {}) if c.resources else {})
               for c in [*(spec.init_containers or []), *spec.containers])


def default_pod_requests(spec: PodSpec) -> None:
    """Kubernetes' defaulting: a pod-level limit without a pod-level request becomes the
    request too, when no container requests that resource (it cannot be derived)."""
    res = spec.resources
    if res is None or not res.limits:
        return
    for name, limit in res.limits.items():
        if name not in POD_LEVEL_RESOURCES or name in (res.requests or {}) \
                or _requested_by_a_container(spec, name) or not _parses(limit):
            continue  # an unsupported or malformed limit is refused once, by validation
        res.requests = {**(res.requests or {}), name: limit}


def _parses(value: str | int | float) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


def pod_level_problems(spec: PodSpec) -> Iterator[str]:
    """Kubernetes' validatePodResources and validatePodResourceConsistency, in its words."""
    res = spec.resources
    if res is None:
        return
    sections = {"requests": res.requests or {}, "limits": res.limits or {}}
    for section, values in sections.items():
        for name in values:
            if name not in POD_LEVEL_RESOURCES:
                yield (f'spec.resources.{section}[{name}]: Unsupported value: "{name}": '
                       'supported values: "cpu", "memory"')
    requests = {k: v for k, v in sections["requests"].items() if k in POD_LEVEL_RESOURCES}
    limits = {k: v for k, v in sections["limits"].items() if k in POD_LEVEL_RESOURCES}
    bad = False
    for section, values in (("requests", requests), ("limits", limits)):
        for name, value in values.items():
            try:
                parse_quantity(value)
            except ValueError as exc:
                bad = True
                yield f"spec.resources.{section}[{name}]: {exc}"
    if bad:
        return
    for name, value in requests.items():
        if name in limits and amount(name, value) > amount(name, limits[name]):
            yield (f'spec.resources.requests: Invalid value: "{value}": must be less than or '
                   f"equal to {name} limit of {limits[name]}")
    try:
        aggregate = container_requests(spec)
    except ValueError:  # a container's own quantity: reported with the container
        return
    for name, value in sorted(requests.items()):
        if aggregate.get(name) > amount(name, value):
            yield (f'spec.resources.requests[{name}]: Invalid value: "{value}": must be greater '
                   f"than or equal to aggregate container requests of {aggregate.text(name)}")
    for i, container in enumerate(spec.containers):
        own = (container.resources.limits if container.resources else None) or {}
        for name, value in sorted(own.items()):
            if name in limits and amount(name, value) > amount(name, limits[name]):
                # Kubernetes builds this path from the pod-level one, and so do we
                yield (f'spec.resources.containers[{i}][{name}].limits: Invalid value: "{value}": '
                       f"must be less than or equal to pod limits of {limits[name]}")


def _positive(values: dict[str, str | int | float] | None) -> dict[str, int]:
    converted = {k: amount(k, v) for k, v in (values or {}).items() if k in POD_LEVEL_RESOURCES}
    return {k: v for k, v in converted.items() if v > 0}


def _qos(pairs: Iterable[tuple[dict[str, int], dict[str, int]]]) -> str:
    pairs = list(pairs)
    if not any(req or lim for req, lim in pairs):
        return "BestEffort"
    guaranteed = all(set(lim) == {"cpu", "memory"} and all(req.get(k, lim[k]) == lim[k] for k in lim)
                     for req, lim in pairs)
    return "Guaranteed" if guaranteed else "Burstable"


def qos_class(pod: Pod) -> str:
    """Kubernetes' ComputePodQOS: only positive cpu and memory quantities count; with
    pod-level resources, only those count."""
    spec = pod.spec
    if spec.resources is not None and (_positive(spec.resources.requests)
                                       or _positive(spec.resources.limits)):
        return _qos([(_positive(spec.resources.requests), _positive(spec.resources.limits))])
    return _qos((_positive(c.resources.requests if c.resources else None),
                 _positive(c.resources.limits if c.resources else None))
                for c in [*spec.containers, *(spec.init_containers or [])])


def is_active(pod: Pod) -> bool:
    """Does the pod still hold its node's resources (a terminating pod does, until it is gone)?"""
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed")
