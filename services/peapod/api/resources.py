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

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peapod.api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes, parse_quantity
from peapod.api.scheduling import qualified_name_problems

if TYPE_CHECKING:
    from peapod.api.node import Node
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


def _aggregate(spec: PodSpec, own: Callable[[Container], dict[str, int]]) -> dict[str, int]:
    """The app containers and the sidecars run together, each init container runs beside
    the sidecars started before it, and the pod asks for the larger of the two, resource
    by resource (Kubernetes' PodRequests)."""
    apps: Counter[str] = Counter()
    for container in spec.containers:
        apps.update(own(container))
    sidecars: Counter[str] = Counter()
    init: dict[str, int] = {}
    for container in spec.init_containers or []:
        mine = own(container)
        if container.restart_policy == "Always":
            sidecars.update(mine)
            mine = {}
        for name in {*sidecars, *mine}:
            init[name] = max(init.get(name, 0), sidecars[name] + mine.get(name, 0))
    return {name: max(apps[name] + sidecars[name], init.get(name, 0))
            for name in {*apps, *sidecars, *init}}


def container_requests(spec: PodSpec, *, non_zero: bool = False) -> Amounts:
    """What the containers ask for together (``_aggregate``).

    With ``non_zero`` (the scheduler's scoring only), a container that requests no CPU
    or memory counts as 100m and 200Mi."""
    def own(container: Container) -> dict[str, int]:
        cpu, memory, _ = _container(container, non_zero=non_zero)
        return {"cpu": cpu, "memory": memory}

    total = _aggregate(spec, own)
    return Amounts(total.get("cpu", 0), total.get("memory", 0))


# -- extended resources (example.com/dongle): counted by the scheduler, never overcommitted --

def is_extended(name: str) -> bool:
    """Kubernetes' IsExtendedResourceName: a domain other than kubernetes.io, and still a
    qualified name once prefixed with ``requests.`` (as a ResourceQuota names it)."""
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    return not qualified_name_problems("", f"requests.{name}")


def extended_requests(spec: PodSpec) -> dict[str, int]:
    """The pod's extended resources, aggregated as cpu and memory are (a limit without a
    request is the request; validation makes them equal)."""
    def own(container: Container) -> dict[str, int]:
        res = container.resources
        values = {**((res.limits or {}) if res else {}), **((res.requests or {}) if res else {})}
        return {k: int(parse_quantity(v)) for k, v in values.items() if is_extended(k)}

    return {k: v for k, v in _aggregate(spec, own).items() if v}


def extended_problems(path: str, name: str, value: str | int | float) -> Iterator[str]:
    """Kubernetes' validateContainerResourceName and ValidateResourceQuantityValue for a
    name with a domain: ``path`` is ``…resources.limits[example.com/dongle]``."""
    quoted = json.dumps(name)
    problems = qualified_name_problems(path, name)
    if problems:
        yield from problems
        return
    if not is_extended(name):
        if "kubernetes.io/" in name:
            yield (f"{path}: Invalid value: {quoted}: peapod counts only extended resources "
                   "(a domain other than kubernetes.io); supported without one: cpu, memory, "
                   "ephemeral-storage")
        else:
            yield f"{path}: Invalid value: {quoted}: doesn't follow extended resource name standard"
        return
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        yield f"{path}: {exc}"
        return
    if quantity % 1:
        yield f"{path}: Invalid value: {json.dumps(str(value))}: must be an integer"


def extended_pairing_problems(where: str, requests: dict[str, str | int | float],
                              limits: dict[str, str | int | float]) -> Iterator[str]:
    """Extended resources cannot be overcommitted: a request needs a limit, and equals it."""
    for name, request in requests.items():
        if not is_extended(name):
            continue
        limit = limits.get(name)
        if limit is None:
            yield (f"{where}.resources.limits: Required value: Limit must be set for non "
                   "overcommitable resources")
            continue
        try:
            equal = parse_quantity(request) == parse_quantity(limit)
        except ValueError:
            continue  # reported with the quantity
        if not equal:
            yield (f"{where}.resources.requests: Invalid value: {json.dumps(str(request))}: must "
                   f"be equal to {name} limit of {limit}")


def node_extended_problems(resources: dict[str, str]) -> Iterator[str]:
    """A kubelet's advertised extended resources: extended names, whole numbers."""
    for name, value in resources.items():
        yield from extended_problems(f"extended resource {name}", name, value)


def parse_extended_resources(text: str) -> dict[str, str]:
    """``example.com/dongle=2,example.com/fan=1`` (the kubelet's and ``peapod up``'s flag);
    ValueError naming each problem."""
    resources: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        if not equals or not value.strip():
            raise ValueError(f"{part.strip()!r}: expected NAME=COUNT, e.g. example.com/dongle=2")
        resources[name.strip()] = value.strip()
    if problems := list(node_extended_problems(resources)):
        raise ValueError("; ".join(problems))
    return resources


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


EPHEMERAL_STORAGE = "ephemeral-storage"


def ephemeral_storage_request(spec: PodSpec) -> int:
    """The pod's ephemeral-storage request in bytes, aggregated as cpu and memory are (a
    limit without a request is the request)."""
    def own(container: Container) -> dict[str, int]:
        res = container.resources
        values = {**((res.limits or {}) if res else {}), **((res.requests or {}) if res else {})}
        value = values.get(EPHEMERAL_STORAGE)
        return {EPHEMERAL_STORAGE: memory_bytes(value)} if value is not None else {}

    return _aggregate(spec, own).get(EPHEMERAL_STORAGE, 0)


def ephemeral_storage_fit(node: Node, pod: Pod, others: Iterable[Pod]) -> bool:
    """Does ``pod``'s ephemeral-storage request fit beside the active ``others`` bound to
    ``node`` (a node that reports none has none, as in Kubernetes)?"""
    want = ephemeral_storage_request(pod.spec)
    if not want:
        return True
    status = node.status
    values = (status.allocatable or status.capacity or {}) if status else {}
    have = memory_bytes(values[EPHEMERAL_STORAGE]) if EPHEMERAL_STORAGE in values else 0
    used = sum(ephemeral_storage_request(p.spec) for p in others
               if p.spec.node_name == node.metadata.name and is_active(p))
    return used + want <= have


def extended_allocatable(node: Node) -> dict[str, int]:
    """The node's extended resources (``example.com/dongle``), whole numbers."""
    status = node.status
    values = (status.allocatable or status.capacity or {}) if status else {}
    return {k: int(parse_quantity(v)) for k, v in values.items() if is_extended(k)}


def extended_requested_on(node: Node, pods: Iterable[Pod]) -> Counter[str]:
    """What the active pods bound to ``node`` take of its extended resources."""
    total: Counter[str] = Counter()
    for pod in pods:
        if pod.spec.node_name == node.metadata.name and is_active(pod):
            total.update(extended_requests(pod.spec))
    return total
