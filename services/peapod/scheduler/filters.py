"""Filters: may this pod run on that node? Pure functions over cached objects.

Each filter returns ``None`` when the node passes, or the reason it fails in
Kubernetes' own words, so the FailedScheduling event reads as a Kubernetes
user expects: ``0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
didn't match Pod's node affinity/selector.``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from peapod.api import Container, Node, Pod
from peapod.api.quantity import cpu_millis, memory_bytes

DEFAULT_MAX_PODS = 110


@dataclass(frozen=True)
class Resources:
    cpu_millis: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millis + other.cpu_millis, self.memory + other.memory,
                         self.pods + other.pods)


# What scoring counts for a container that requests nothing, as Kubernetes'
# scheduler does (DefaultMilliCPURequest, DefaultMemoryRequest): otherwise
# pods without requests all weigh zero and pile onto the first node.
NON_ZERO_CPU_MILLIS = 100
NON_ZERO_MEMORY = 200 * 1024 * 1024


def _container_requests(container: Container, *, non_zero: bool) -> tuple[int, int]:
    res = container.resources
    requests = dict((res.limits or {}) if res else {})
    requests.update((res.requests or {}) if res else {})
    cpu = cpu_millis(requests["cpu"]) if "cpu" in requests else \
        (NON_ZERO_CPU_MILLIS if non_zero else 0)
    mem = memory_bytes(requests["memory"]) if "memory" in requests else \
        (NON_ZERO_MEMORY if non_zero else 0)
    return cpu, mem


def pod_requests(pod: Pod, *, non_zero: bool = False) -> Resources:
    """What the pod asks for; a limit without a request counts as the request.

    With ``non_zero`` (for scoring only, never for fitting), a container that
    requests no CPU or memory counts as 100m and 200Mi. Init containers count
    as Kubernetes counts them: the app containers and the sidecars run
    together, each init container runs beside the sidecars started before it,
    and the pod asks for the larger of the two, resource by resource.
    """
    apps = [_container_requests(c, non_zero=non_zero) for c in pod.spec.containers]
    cpu, mem = sum(c for c, _ in apps), sum(m for _, m in apps)
    side_cpu = side_mem = init_cpu = init_mem = 0
    for container in pod.spec.init_containers or []:
        c, m = _container_requests(container, non_zero=non_zero)
        if container.restart_policy == "Always":
            side_cpu, side_mem = side_cpu + c, side_mem + m
            c, m = 0, 0
        init_cpu, init_mem = max(init_cpu, side_cpu + c), max(init_mem, side_mem + m)
    return Resources(max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem), 1)


def allocatable(node: Node) -> Resources:
    status = node.status
    values = (status.allocatable or status.capacity or {}) if status else {}
    return Resources(
        cpu_millis(values["cpu"]) if "cpu" in values else 0,
        memory_bytes(values["memory"]) if "memory" in values else 0,
        int(values.get("pods", DEFAULT_MAX_PODS)),
    )


def is_active(pod: Pod) -> bool:
    """Does the pod still hold its node's resources?"""
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed")


def requested_on(node: Node, pods: Iterable[Pod], *, non_zero: bool = False) -> Resources:
    total = Resources()
    for pod in pods:
        if pod.spec.node_name == node.metadata.name and is_active(pod):
            total = total + pod_requests(pod, non_zero=non_zero)
    return total


Filter = Callable[[Pod, Node, Resources], str | None]


def node_ready(pod: Pod, node: Node, used: Resources) -> str | None:
    return None if node.ready else "node(s) were not ready"


def _lease_expired(pod: Pod, node: Node, used: Resources) -> str | None:
    # Kubernetes reports a node whose heartbeat stopped as not ready.
    return "node(s) were not ready"


def node_schedulable(pod: Pod, node: Node, used: Resources) -> str | None:
    return "node(s) were unschedulable" if node.spec.unschedulable else None


def node_selector_matches(pod: Pod, node: Node, used: Resources) -> str | None:
    labels = node.metadata.labels or {}
    for key, value in (pod.spec.node_selector or {}).items():
        if labels.get(key) != value:
            return "node(s) didn't match Pod's node affinity/selector"
    return None


def resources_fit(pod: Pod, node: Node, used: Resources) -> str | None:
    want, have = pod_requests(pod), allocatable(node)
    if used.pods + 1 > have.pods:
        return "Too many pods"
    if used.cpu_millis + want.cpu_millis > have.cpu_millis and want.cpu_millis:
        return "Insufficient cpu"
    if used.memory + want.memory > have.memory and want.memory:
        return "Insufficient memory"
    return None


FILTERS: list[Filter] = [node_ready, node_schedulable, node_selector_matches, resources_fit]


@dataclass(frozen=True)
class Feasibility:
    nodes: list[Node]
    reasons: Counter[str]
    total: int

    def message(self) -> str:
        if self.total == 0:
            return "0/0 nodes are available: no nodes registered."
        detail = ", ".join(f"{count} {reason}" for reason, count in sorted(self.reasons.items()))
        return f"0/{self.total} nodes are available: {detail}."


def feasible_nodes(pod: Pod, nodes: list[Node], pods: list[Pod], *,
                   live: set[str] | None = None) -> Feasibility:
    """Nodes that can run ``pod``; ``live`` names the nodes with a fresh lease (None: all)."""
    passing: list[Node] = []
    reasons: Counter[str] = Counter()
    for node in nodes:
        used = requested_on(node, pods)
        filters = FILTERS if live is None or node.metadata.name in live else [_lease_expired]
        failure = next((r for f in filters if (r := f(pod, node, used)) is not None), None)
        if failure is None:
            passing.append(node)
        else:
            reasons[failure] += 1
    return Feasibility(nodes=passing, reasons=reasons, total=len(nodes))
