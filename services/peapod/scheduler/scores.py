"""Scores: among nodes that fit, prefer the least allocated one.

Kubernetes' LeastAllocated strategy: the score is the mean fraction of CPU
and memory left free after placing the pod, counting a container without
requests as 100m CPU and 200Mi memory as Kubernetes does (so such pods
spread instead of piling onto one node); ties go to the name, so a decision
is deterministic and testable.
"""

from __future__ import annotations

from peapod.api import Node, Pod
from peapod.scheduler.filters import allocatable, pod_requests, requested_on


def least_allocated(pod: Pod, node: Node, pods: list[Pod]) -> float:
    have = allocatable(node)
    used = requested_on(node, pods, non_zero=True) + pod_requests(pod, non_zero=True)
    fractions = []
    if have.cpu_millis:
        fractions.append(max(0.0, 1 - used.cpu_millis / have.cpu_millis))
    if have.memory:
        fractions.append(max(0.0, 1 - used.memory / have.memory))
    return sum(fractions) / len(fractions) if fractions else 0.0


def pick_node(pod: Pod, nodes: list[Node], pods: list[Pod]) -> Node:
    return max(nodes, key=lambda n: (least_allocated(pod, n, pods), _reverse(n.metadata.name)))


def _reverse(name: str | None) -> tuple[int, ...]:
    # max() with the name inverted: among equal scores, the first name alphabetically wins
    return tuple(-ord(c) for c in (name or ""))
