"""Scores: among nodes that fit, the best one, as Kubernetes' default plugins weigh them.

Each plugin gives every feasible node a raw score, normalised to 0-100 over
the nodes (Kubernetes' NormalizeScore), and the weighted sum decides, with
Kubernetes' default weights:

* TaintToleration (3): fewer ``PreferNoSchedule`` taints the pod does not tolerate;
* NodeAffinity (2): the summed weights of the preferred node affinity terms that match;
* PodTopologySpread (2): fewer matching pods in the node's domains (``ScheduleAnyway``);
* InterPodAffinity (2): preferred pod affinity minus anti-affinity, both ways round;
* NodeResourcesFit, LeastAllocated (1): the mean fraction of CPU and memory
  left free after placing the pod, counting a container without requests
  as 100m CPU and 200Mi memory as Kubernetes does (so such pods spread
  instead of piling onto one node).

Ties go to the name, so a decision is deterministic and testable.
"""

from __future__ import annotations

from collections.abc import Callable

from peapod.api import Node, Pod
from peapod.api.scheduling import term_matches
from peapod.scheduler.filters import allocatable, pod_requests, requested_on
from peapod.scheduler.topology import Snapshot, preferred_affinity_score, spread_score

MAX_SCORE = 100
RawScore = Callable[[Pod, Node, Snapshot], float | None]


def least_allocated(pod: Pod, node: Node, pods: list[Pod]) -> float:
    have = allocatable(node)
    used = requested_on(node, pods, non_zero=True) + pod_requests(pod, non_zero=True)
    fractions = []
    if have.cpu_millis:
        fractions.append(max(0.0, 1 - used.cpu_millis / have.cpu_millis))
    if have.memory:
        fractions.append(max(0.0, 1 - used.memory / have.memory))
    return sum(fractions) / len(fractions) if fractions else 0.0


def _resources(pod: Pod, node: Node, snap: Snapshot) -> float:
    return MAX_SCORE * least_allocated(pod, node, snap.on_node.get(node.metadata.name or "", []))


def _intolerable_taints(pod: Pod, node: Node, snap: Snapshot) -> float:
    tolerations = [t for t in pod.spec.tolerations or []
                   if t.effect in (None, "", "PreferNoSchedule")]
    return -sum(1 for taint in node.spec.taints or [] if taint.effect == "PreferNoSchedule"
                and not any(t.tolerates(taint) for t in tolerations))


def _node_preference(pod: Pod, node: Node, snap: Snapshot) -> float:
    affinity = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    terms = (affinity.preferred_during_scheduling_ignored_during_execution or []) \
        if affinity else []
    return sum(t.weight for t in terms if term_matches(t.preference, node))


def _spread(pod: Pod, node: Node, snap: Snapshot) -> float | None:
    score = spread_score(pod, node, snap)
    return None if score is None else -score


def _pod_preference(pod: Pod, node: Node, snap: Snapshot) -> float:
    return preferred_affinity_score(pod, node, snap)


# (weight, raw score, already on the 0-100 scale)
PLUGINS: list[tuple[int, RawScore, bool]] = [
    (3, _intolerable_taints, False),
    (2, _node_preference, False),
    (2, _spread, False),
    (2, _pod_preference, False),
    (1, _resources, True),
]


def _normalised(raw: list[float | None]) -> list[float]:
    """Min-max to 0-100 (all equal: 0 each, so the plugin does not decide)."""
    values = [r for r in raw if r is not None]
    if not values or max(values) == min(values):
        return [0.0] * len(raw)
    low, high = min(values), max(values)
    return [0.0 if r is None else MAX_SCORE * (r - low) / (high - low) for r in raw]


def node_scores(pod: Pod, nodes: list[Node], snap: Snapshot) -> list[float]:
    totals = [0.0] * len(nodes)
    for weight, plugin, scaled in PLUGINS:
        raw = [plugin(pod, node, snap) for node in nodes]
        values = [r or 0.0 for r in raw] if scaled else _normalised(raw)
        totals = [t + weight * v for t, v in zip(totals, values, strict=True)]
    return totals


def pick_node(pod: Pod, nodes: list[Node], pods: list[Pod], *,
              all_nodes: list[Node] | None = None) -> Node:
    """The best of ``nodes`` (the feasible ones); ``all_nodes`` gives the topology (default:
    ``nodes``)."""
    snap = Snapshot(all_nodes if all_nodes is not None else nodes, pods)
    scores = node_scores(pod, nodes, snap)
    ranked = zip(scores, nodes, strict=True)
    return max(ranked, key=lambda sn: (sn[0], _reverse(sn[1].metadata.name)))[1]


def _reverse(name: str | None) -> tuple[int, ...]:
    # max() with the name inverted: among equal scores, the first name alphabetically wins
    return tuple(-ord(c) for c in (name or ""))
