"""Preemption: make room for a pod that fits nowhere by evicting pods of lower priority.

This is kube-scheduler's DefaultPreemption plugin, which runs when every node
failed the filters, as pure functions over the cache (the binder carries
out the result):

1. **Eligibility.** A pod with ``preemptionPolicy: Never`` never preempts;
   nor does a pod whose nominated node still holds a terminating pod of
   lower priority (its earlier preemption is still freeing that node, and
   preempting again would evict more than needed).
2. **Candidates.** A node failing a filter that evicting pods cannot change
   (not ready, cordoned, an untolerated taint, node affinity or selector, a
   missing topology label) is skipped: "Preemption is not helpful for
   scheduling". On every other node all pods of *lower* priority (never equal
   or higher) are removed in a simulation; if the pod still does not fit,
   the node has "No preemption victims found for incoming pod". Otherwise the
   removed pods are added back from the most important (highest priority,
   then earliest start) down, each one kept if the pod still fits with it:
   the rest are the node's victims, as few and as unimportant as possible.
3. **Choice**, by Kubernetes' criteria in order: the lowest priority of the
   most important victim, the smallest sum of victims' priorities, the
   fewest victims, then the latest start of the victims, then node name.
   Kubernetes first minimises PodDisruptionBudget violations; peapod has no
   PodDisruptionBudgets, so that step is skipped.

The binder then sets the pod's ``status.nominatedNodeName``, deletes each
victim gracefully (its own grace period) with a ``Preempted`` event, and
binds the pod once the victims are gone. Until then, pods nominated to a node
count there for pods of no higher priority (``with_nominated``), so the room
made for a pod is not taken by a less important one.
"""

from __future__ import annotations

from dataclasses import dataclass

from peapod.api import Node, Pod, parse_rfc3339
from peapod.api.priority import NEVER, pod_priority
from peapod.api.resources import is_active
from peapod.scheduler.filters import FILTERS
from peapod.scheduler.topology import Snapshot
from peapod.scheduler.volumes import VolumeView, volume_affinity

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
# failures that evicting pods cannot cure (Kubernetes' UnschedulableAndUnresolvable)
UNRESOLVABLE = ("node(s) were not ready", "node(s) were unschedulable",
                "node(s) had untolerated taint", "node(s) didn't match Pod's node affinity/selector",
                "(missing required label)")
_INT32_OFFSET = 2**31  # Kubernetes adds MaxInt32+1 to each priority so negative ones sum right


@dataclass(frozen=True)
class Candidate:
    node: Node
    victims: list[Pod]

    @property
    def node_name(self) -> str:
        return self.node.metadata.name or ""


@dataclass(frozen=True)
class Refusal:
    """Why the pod cannot preempt: the part after ``preemption:`` in FailedScheduling."""

    message: str


def priority(pod: Pod) -> int:
    return pod_priority(pod.spec.priority)


def not_eligible(pod: Pod, pods: list[Pod]) -> str | None:
    """Kubernetes' PodEligibleToPreemptOthers: why the pod may not preempt, or None."""
    if pod.spec.preemption_policy == NEVER:
        return "not eligible due to preemptionPolicy=Never."
    nominated = pod.status.nominated_node_name if pod.status else None
    if nominated and any(p.spec.node_name == nominated and p.metadata.deletion_timestamp
                         and priority(p) < priority(pod) for p in pods):
        return "not eligible due to a terminating pod on the nominated node."
    return None


def with_nominated(pod: Pod, pods: list[Pod]) -> list[Pod]:
    """``pods``, plus every other unbound pod nominated to a node and not less important than
    ``pod``, placed on that node (Kubernetes' addNominatedPods)."""
    nominated = [p.model_copy(update={"spec": p.spec.model_copy(
                     update={"node_name": p.status.nominated_node_name})})
                 for p in pods
                 if p.status and p.status.nominated_node_name and not p.spec.node_name
                 and p.metadata.uid != pod.metadata.uid and priority(p) >= priority(pod)]
    return [*pods, *nominated] if nominated else pods


def _fits(pod: Pod, node: Node, nodes: list[Node], pods: list[Pod]) -> bool:
    snap = Snapshot(nodes, pods)
    return all(check(pod, node, snap) is None for check in FILTERS)


def _first_failure(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    return next((r for check in FILTERS if (r := check(pod, node, snap)) is not None), None)


def _evictable(pod: Pod, other: Pod) -> bool:
    """Could ``other`` make room for ``pod``: active, not already going, of lower priority?"""
    return is_active(other) and not other.metadata.deletion_timestamp and \
        priority(other) < priority(pod)


def _start(p: Pod) -> float:
    text = (p.status.start_time if p.status else None) or p.metadata.creation_timestamp
    return parse_rfc3339(text).timestamp() if text else 0.0


def _more_important_first(p: Pod) -> tuple[int, float]:
    return -priority(p), _start(p)  # Kubernetes' MoreImportantPod: priority, then earlier start


def victims_on(pod: Pod, node: Node, nodes: list[Node], pods: list[Pod]) -> list[Pod] | None:
    """Kubernetes' SelectVictimsOnNode: the fewest, least important pods of lower priority
    whose removal lets ``pod`` fit on ``node``; None if removing all of them is not enough."""
    name = node.metadata.name
    lower = [p for p in pods if p.spec.node_name == name and _evictable(pod, p)]
    if not lower:
        return None
    lower_ids = {id(p) for p in lower}
    remaining = [p for p in pods if id(p) not in lower_ids]
    if not _fits(pod, node, nodes, remaining):
        return None
    victims: list[Pod] = []
    for candidate in sorted(lower, key=_more_important_first):
        if _fits(pod, node, nodes, [*remaining, candidate]):
            remaining.append(candidate)  # reprieved
        else:
            victims.append(candidate)
    return victims


def _rank(candidate: Candidate) -> tuple[int, int, int, float, str]:
    """Kubernetes' pickOneNodeForPreemption, lowest first (no PodDisruptionBudgets): the
    lowest highest-victim priority, smallest sum, fewest victims, latest earliest start."""
    victims = candidate.victims
    highest = max(priority(v) for v in victims)
    total = sum(priority(v) + _INT32_OFFSET for v in victims)
    earliest_start = min(_start(v) for v in victims if priority(v) == highest)
    return highest, total, len(victims), -earliest_start, candidate.node_name


def find_preemption(pod: Pod, nodes: list[Node], pods: list[Pod], *,
                    live: set[str] | None = None, volumes: VolumeView | None = None
                    ) -> Candidate | Refusal:
    """Where ``pod`` (which fits nowhere) can run after evicting pods, or why it cannot.
    A node its bound volumes cannot reach (volume node affinity) is no candidate: evicting
    pods there cannot help, as Kubernetes marks that conflict unresolvable."""
    if reason := not_eligible(pod, pods):
        return Refusal(reason)
    resolved = volumes.resolve(pod) if volumes is not None else []
    pinned = resolved if isinstance(resolved, list) else []
    pods = with_nominated(pod, pods)
    snap = Snapshot(nodes, pods)
    with_lower = {p.spec.node_name for p in pods if p.spec.node_name and _evictable(pod, p)}
    candidates: list[Candidate] = []
    unhelpful = no_victims = 0
    for node in nodes:
        failure = ("node(s) were not ready" if live is not None and node.metadata.name not in live
                   else _first_failure(pod, node, snap))
        if failure is None or any(marker in failure for marker in UNRESOLVABLE) or (
                pinned and volume_affinity(pinned, node) is not None):
            unhelpful += 1  # a node that passes now was taken since: nothing to evict for it
            continue
        victims = victims_on(pod, node, nodes, pods) if node.metadata.name in with_lower else None
        if victims:
            candidates.append(Candidate(node=node, victims=victims))
        else:
            no_victims += 1
    if candidates:
        return min(candidates, key=_rank)
    counts = sorted(f"{n} {reason}" for n, reason in ((no_victims, NO_VICTIMS),
                                                        (unhelpful, NOT_HELPFUL)) if n)
    return Refusal(f"0/{len(nodes)} nodes are available: {', '.join(counts)}.")
