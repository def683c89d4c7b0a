"""Filters: may this pod run on that node? Pure functions over cached objects.

Each filter returns ``None`` when the node passes, or the reason it fails in
Kubernetes' own words, so the FailedScheduling event reads as a Kubernetes
user expects: ``0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
didn't match Pod's node affinity/selector.`` They run in the order of
Kubernetes' default profile (NodeUnschedulable, TaintToleration,
NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread,
InterPodAffinity) and a node is reported under its first failure, as
Kubernetes reports it. Inter-pod affinity and topology spread live in
``topology.py``; what every filter reads of the cluster is a ``Snapshot``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from peapod.api import Node, Pod, resources
from peapod.api.node import Taint
from peapod.api.quantity import cpu_millis, memory_bytes
from peapod.api.resources import extended_allocatable, extended_requested_on, is_active
from peapod.api.scheduling import (
    fits_node_affinity,
    format_taint,
    untolerated_taint,
)
from peapod.scheduler.topology import Snapshot, inter_pod_affinity, topology_spread
from peapod.scheduler.volumes import VolumeView, volume_affinity

DEFAULT_MAX_PODS = 110


@dataclass(frozen=True)
class Resources:
    cpu_millis: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millis + other.cpu_millis, self.memory + other.memory,
                         self.pods + other.pods)


def pod_requests(pod: Pod, *, non_zero: bool = False) -> Resources:
    """What the pod asks for, as Kubernetes counts it (``peapod.api.resources``): its
    pod-level requests where set, else its containers' (init containers and sidecars
    included; a limit without a request counts as the request). With ``non_zero`` (for
    scoring only, never for fitting), a container that requests no CPU or memory counts
    as 100m and 200Mi."""
    amounts = resources.pod_requests(pod, non_zero=non_zero)
    return Resources(amounts.cpu, amounts.memory, 1)


def allocatable(node: Node) -> Resources:
    status = node.status
    values = (status.allocatable or status.capacity or {}) if status else {}
    return Resources(
        cpu_millis(values["cpu"]) if "cpu" in values else 0,
        memory_bytes(values["memory"]) if "memory" in values else 0,
        int(values.get("pods", DEFAULT_MAX_PODS)),
    )


def requested_on(node: Node, pods: Iterable[Pod], *, non_zero: bool = False) -> Resources:
    total = Resources()
    for pod in pods:
        if pod.spec.node_name == node.metadata.name and is_active(pod):
            total = total + pod_requests(pod, non_zero=non_zero)
    return total


Filter = Callable[[Pod, Node, Snapshot], str | None]
UNSCHEDULABLE_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


def node_ready(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    return None if node.ready else "node(s) were not ready"


def _lease_expired(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    # Kubernetes reports a node whose heartbeat stopped as not ready.
    return "node(s) were not ready"


def node_schedulable(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """A cordoned node takes only pods that tolerate its ``unschedulable`` taint, as Kubernetes'
    NodeUnschedulable plugin."""
    if not node.spec.unschedulable:
        return None
    if any(t.tolerates(UNSCHEDULABLE_TAINT) for t in pod.spec.tolerations or []):
        return None
    return "node(s) were unschedulable"


def taints_tolerated(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """Kubernetes' TaintToleration filter: every NoSchedule and NoExecute taint is tolerated."""
    taint = untolerated_taint(node.spec.taints or [], pod.spec.tolerations or [],
                              ("NoSchedule", "NoExecute"))
    return None if taint is None else f"node(s) had untolerated taint {format_taint(taint)}"


def node_affinity_matches(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """``nodeSelector`` and the required node affinity, both (Kubernetes' NodeAffinity filter)."""
    return None if fits_node_affinity(pod.spec.node_selector, pod.spec.affinity, node) else \
        "node(s) didn't match Pod's node affinity/selector"


def host_ports(pod: Pod) -> set[tuple[str, str, int]]:
    """(hostIP, protocol, port) the pod takes on its node; a hostNetwork pod takes its
    containerPorts (Kubernetes defaults hostPort to them)."""
    taken: set[tuple[str, str, int]] = set()
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        for port in container.ports or []:
            number = port.host_port or (port.container_port if pod.spec.host_network else None)
            if number:
                taken.add((port.host_ip or "0.0.0.0", port.protocol, number))
    return taken


def _ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    return a[1:] == b[1:] and (a[0] == b[0] or "0.0.0.0" in (a[0], b[0]))


def ports_free(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """Kubernetes' NodePorts filter: no host port (protocol, overlapping address) taken twice."""
    wanted = host_ports(pod)
    if not wanted:
        return None
    for other in snap.on_node.get(node.metadata.name or "", []):
        if any(_ports_conflict(w, t) for w in wanted for t in host_ports(other)):
            return "node(s) didn't have free ports for the requested pod ports"
    return None


def resources_fit(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    want, have = pod_requests(pod), allocatable(node)
    used = requested_on(node, snap.on_node.get(node.metadata.name or "", []))
    if used.pods + 1 > have.pods:
        return "Too many pods"
    if used.cpu_millis + want.cpu_millis > have.cpu_millis and want.cpu_millis:
        return "Insufficient cpu"
    if used.memory + want.memory > have.memory and want.memory:
        return "Insufficient memory"
    if not resources.ephemeral_storage_fit(node, pod, snap.on_node.get(node.metadata.name or "",
                                                                         [])):
        return "Insufficient ephemeral-storage"
    return _extended_fit(pod, node, snap)


def _extended_fit(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """Extended resources are never overcommitted: a node without one has none of it."""
    want = resources.extended_requests(pod.spec)
    if not want:
        return None
    have = extended_allocatable(node)
    used = extended_requested_on(node, snap.on_node.get(node.metadata.name or "", []))
    for name in sorted(want):
        if used[name] + want[name] > have.get(name, 0):
            return f"Insufficient {name}"
    return None


FILTERS: list[Filter] = [node_ready, node_schedulable, taints_tolerated, node_affinity_matches,
                         ports_free, resources_fit, topology_spread, inter_pod_affinity]


@dataclass(frozen=True)
class Feasibility:
    nodes: list[Node]
    reasons: Counter[str]
    total: int
    unresolvable: str | None = None  # a PreFilter's failure, the same for every node

    def message(self) -> str:
        """Kubernetes' FitError: ``count reason`` strings sorted as strings (the binder adds
        the ``preemption:`` part)."""
        if self.total == 0:
            return "0/0 nodes are available: no nodes registered."
        if self.unresolvable:
            return f"0/{self.total} nodes are available: {self.unresolvable}."
        detail = ", ".join(sorted(f"{count} {reason}" for reason, count in self.reasons.items()))
        return f"0/{self.total} nodes are available: {detail}."


def feasible_nodes(pod: Pod, nodes: list[Node], pods: list[Pod], *,
                   live: set[str] | None = None, volumes: VolumeView | None = None
                   ) -> Feasibility:
    """Nodes that can run ``pod``; ``live`` names the nodes with a fresh lease (None: all);
    ``volumes``: the claims and volumes, for the pod's ``persistentVolumeClaim`` volumes."""
    passing: list[Node] = []
    reasons: Counter[str] = Counter()
    snap = Snapshot(nodes, pods)
    filters = FILTERS
    if volumes is not None:
        bound = volumes.resolve(pod)
        if isinstance(bound, str):
            return Feasibility(nodes=[], reasons=reasons, total=len(nodes), unresolvable=bound)
        if bound:  # VolumeBinding runs after NodeResourcesFit
            at = FILTERS.index(resources_fit) + 1
            filters = [*FILTERS[:at], lambda p, n, _: volume_affinity(bound, n), *FILTERS[at:]]
    for node in nodes:
        checks = filters if live is None or node.metadata.name in live else [_lease_expired]
        failure = next((r for f in checks if (r := f(pod, node, snap)) is not None), None)
        if failure is None:
            passing.append(node)
        else:
            reasons[failure] += 1
    return Feasibility(nodes=passing, reasons=reasons, total=len(nodes))
