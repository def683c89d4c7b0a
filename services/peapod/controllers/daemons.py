"""Which nodes a DaemonSet runs on, and what to change on each: pure functions.

Kubernetes' rules (``pkg/controller/daemon``), as far as peapod's pods go:

* a node should run the DaemonSet's pod when it matches the template's
  ``nodeSelector`` and required node affinity and has no ``NoSchedule`` or
  ``NoExecute`` taint the template's tolerations, or those Kubernetes adds
  to daemon pods (``node.kubernetes.io/unschedulable``, ``not-ready``,
  ``unreachable``, the pressure taints), do not tolerate; so a cordoned or
  unreachable node keeps its daemon;
* one pod per such node: a missing one is created, extras are deleted
  (the oldest stays); pods on a node that is gone, that no longer matches,
  or that has a ``NoExecute`` taint they do not tolerate are deleted, while
  a ``NoSchedule`` taint alone only keeps a new one from being made there:
  the running daemon stays, counted as misscheduled (Kubernetes'
  ``shouldContinueRunning``);
* a node whose pod is being deleted waits for it to be gone before a new
  one is created there (a daemon often holds a host port);
* **RollingUpdate**: pods of an older template (label
  ``controller-revision-hash``) are deleted, at most ``maxUnavailable``
  nodes at a time counting those whose daemon is already not ready; the
  next pass creates the new pod on that node. **OnDelete**: only pods
  people delete are replaced.

As in Kubernetes since 1.12, the controller does not bind its pods: each
carries a required node affinity with one ``matchFields`` term,
``metadata.name In [<node>]`` (replacing any required terms of the
template, which the controller already checked), and the tolerations
Kubernetes adds to daemon pods, and the scheduler binds it like any pod
(resources, ports, priority and preemption included). A pod's node is
therefore its ``nodeName`` once bound, else the node its affinity names
(``target_node``, Kubernetes' GetTargetNodeName).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peapod.api import Node, Pod
from peapod.api.apps import DaemonSet, DaemonSetStatus
from peapod.api.pod import PodSpec
from peapod.api.scheduling import (
    NODE_NAME_FIELD,
    Affinity,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Toleration,
    fits_node_affinity,
    untolerated_taint,
)
from peapod.controllers.claiming import is_active, is_ready
from peapod.controllers.rollout import scaled_value

REVISION_HASH = "controller-revision-hash"
TOLERATED = frozenset({
    "node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure"})


DAEMON_TOLERATIONS = [Toleration(key=key, operator="Exists") for key in sorted(TOLERATED)]
# what Kubernetes' AddOrUpdateDaemonPodTolerations puts on every daemon pod
POD_TOLERATIONS = [
    Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute"),
    *(Toleration(key=f"node.kubernetes.io/{key}", operator="Exists", effect="NoSchedule")
      for key in ("disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"))]
NETWORK_UNAVAILABLE = Toleration(key="node.kubernetes.io/network-unavailable", operator="Exists",
                                 effect="NoSchedule")  # hostNetwork daemons only


def target_node(pod: Pod) -> str:
    """Kubernetes' GetTargetNodeName: the pod's node, or the one its ``matchFields`` names."""
    if pod.spec.node_name:
        return pod.spec.node_name
    node_affinity = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    required = node_affinity.required_during_scheduling_ignored_during_execution \
        if node_affinity else None
    for term in required.node_selector_terms if required else []:
        for req in term.match_fields or []:
            if req.key == NODE_NAME_FIELD and req.operator == "In" and len(req.values or []) == 1:
                return (req.values or [""])[0]
    return ""


def bind_to_node(spec: PodSpec, node: str) -> None:
    """Kubernetes' ReplaceDaemonSetPodNodeNameNodeAffinity and AddOrUpdateDaemonPodTolerations:
    the pod may run on ``node`` only, and tolerates what a daemon tolerates."""
    term = NodeSelectorTerm(match_fields=[NodeSelectorRequirement(
        key=NODE_NAME_FIELD, operator="In", values=[node])])
    affinity = spec.affinity or Affinity()
    node_affinity = affinity.node_affinity or NodeAffinity()
    node_affinity.required_during_scheduling_ignored_during_execution = NodeSelector(
        node_selector_terms=[term])
    affinity.node_affinity = node_affinity
    spec.affinity = affinity
    wanted = [*POD_TOLERATIONS, *([NETWORK_UNAVAILABLE] if spec.host_network else [])]
    tolerations = list(spec.tolerations or [])
    for toleration in wanted:
        tolerations = [t for t in tolerations if (t.key, t.effect) != (toleration.key,
                                                                         toleration.effect)]
        tolerations.append(toleration)
    spec.tolerations = tolerations


def should_run(ds: DaemonSet, node: Node) -> bool:
    """Whether a daemon pod should be made on ``node``."""
    return _fits(ds, node, ("NoSchedule", "NoExecute"))


def should_continue_running(ds: DaemonSet, node: Node) -> bool:
    """Whether a daemon pod already on ``node`` stays: only ``NoExecute`` taints evict it."""
    return _fits(ds, node, ("NoExecute",))


def _fits(ds: DaemonSet, node: Node, effects: tuple[str, ...]) -> bool:
    spec = ds.spec.template.spec
    if not fits_node_affinity(spec.node_selector, spec.affinity, node):
        return False
    tolerations = [*(spec.tolerations or []), *DAEMON_TOLERATIONS]
    return untolerated_taint(node.spec.taints or [], tolerations, effects) is None


@dataclass
class DaemonPlan:
    create_on: list[str] = field(default_factory=list)  # node names
    delete: list[Pod] = field(default_factory=list)
    status: DaemonSetStatus = field(default_factory=DaemonSetStatus)


def plan_daemonset(ds: DaemonSet, nodes: list[Node], pods: list[Pod], *, hash_: str) -> DaemonPlan:
    """What to create and delete now, and the status that follows from what is."""
    plan = DaemonPlan()
    by_node: dict[str, list[Pod]] = {}
    for pod in pods:
        by_node.setdefault(target_node(pod), []).append(pod)
    wanted = {n.metadata.name or "" for n in nodes if should_run(ds, n)}
    staying = {n.metadata.name or "" for n in nodes if should_continue_running(ds, n)}
    counts = {"current": 0, "misscheduled": 0, "ready": 0, "updated": 0}
    outdated: list[Pod] = []
    unavailable = 0
    for node_name in sorted(set(by_node) | wanted):
        on_node = sorted(by_node.get(node_name, []), key=lambda p: p.metadata.creation_timestamp or "")
        active = [p for p in on_node if is_active(p)]
        if node_name not in wanted:
            # kept (but for extras) on a node it may stay on: a NoSchedule taint came later
            plan.delete += active[1:] if node_name in staying else active
            counts["misscheduled"] += 1 if active else 0
            continue
        if not active:
            unavailable += 1
            if len(on_node) == len(active):  # nothing still terminating there
                plan.create_on.append(node_name)
            continue
        keep, extra = active[0], active[1:]
        plan.delete += extra
        counts["current"] += 1
        counts["ready"] += 1 if is_ready(keep) else 0
        unavailable += 0 if is_ready(keep) else 1
        if (keep.metadata.labels or {}).get(REVISION_HASH) == hash_:
            counts["updated"] += 1
        else:
            outdated.append(keep)
    plan.delete += _rolling_deletions(ds, outdated, len(wanted), unavailable)
    plan.status = DaemonSetStatus(
        current_number_scheduled=counts["current"], number_misscheduled=counts["misscheduled"],
        desired_number_scheduled=len(wanted), number_ready=counts["ready"],
        observed_generation=ds.metadata.generation, updated_number_scheduled=counts["updated"],
        number_available=counts["ready"], number_unavailable=len(wanted) - counts["ready"])
    return plan


def _rolling_deletions(ds: DaemonSet, outdated: list[Pod], desired: int,
                       unavailable: int) -> list[Pod]:
    """Old pods to delete now: not-ready ones first, within maxUnavailable."""
    strategy = ds.spec.update_strategy
    if strategy.type != "RollingUpdate" or strategy.rolling_update is None or not outdated:
        return []
    budget = max(scaled_value(strategy.rolling_update.max_unavailable, desired, round_up=True), 1)
    ordered = sorted(outdated, key=lambda p: is_ready(p))  # the not ready cost nothing more
    chosen = [p for p in ordered if not is_ready(p)]
    room = budget - unavailable
    chosen += [p for p in ordered if is_ready(p)][:max(room, 0)]
    return chosen
