"""Inter-pod affinity and topology spread: rules over the pods already placed.

Both read the pods already bound, grouped by the value their node has for a
``topologyKey`` (a domain: one node for ``kubernetes.io/hostname``, a zone
for ``topology.kubernetes.io/zone``), as Kubernetes' InterPodAffinity and
PodTopologySpread plugins do:

* required pod affinity: some pod matching each term runs in the node's
  domain; the first pod of a group that selects itself may go anywhere that
  has the topology keys;
* required anti-affinity: no pod matching a term runs in the node's domain,
  and no pod already placed has an anti-affinity term matching this pod in
  that domain (symmetry);
* topology spread (``DoNotSchedule``): placing the pod keeps the number of
  matching pods in the node's domain within ``maxSkew`` of the smallest
  domain among the nodes the pod may go to (``minDomains``: fewer domains
  than that count as a minimum of zero).

The preferred forms and ``ScheduleAnyway`` give raw scores that
``scores.py`` normalises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from peapod.api import Node, Pod
from peapod.api.resources import is_active
from peapod.api.scheduling import (
    PodAffinityTerm,
    TopologySpreadConstraint,
    fits_node_affinity,
    untolerated_taint,
)

AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
SPREAD_MISMATCH = "node(s) didn't match pod topology spread constraints"
SPREAD_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HARD_POD_AFFINITY_WEIGHT = 1  # Kubernetes' default: an existing pod's required affinity, as a score


@dataclass
class Snapshot:
    """The cluster as one pass sees it: the nodes, and the bound, active pods of each."""

    nodes: list[Node]
    pods: list[Pod]
    on_node: dict[str, list[Pod]] = field(init=False)
    labels: dict[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.on_node = {}
        for pod in self.pods:
            if pod.spec.node_name and is_active(pod):
                self.on_node.setdefault(pod.spec.node_name, []).append(pod)
        self.labels = {n.metadata.name or "": n.metadata.labels or {} for n in self.nodes}

    def placed(self) -> Iterator[tuple[Pod, dict[str, str]]]:
        """Every bound, active pod with its node's labels."""
        for name, pods in self.on_node.items():
            labels = self.labels.get(name, {})
            for pod in pods:
                yield pod, labels


def _same_domain(a: dict[str, str], b: dict[str, str], key: str) -> bool:
    return key in a and key in b and a[key] == b[key]


def term_selects(term: PodAffinityTerm, owner: Pod, other: Pod) -> bool:
    """Does ``owner``'s term select ``other``? No namespaces: the owner's; no selector: none."""
    namespaces = set(term.namespaces or [owner.metadata.namespace or "default"])
    if (other.metadata.namespace or "default") not in namespaces or term.label_selector is None:
        return False
    return term.label_selector.matches(other.metadata.labels)


def _required(pod: Pod, kind: str) -> list[PodAffinityTerm]:
    affinity = getattr(pod.spec.affinity, kind, None) if pod.spec.affinity else None
    return (affinity.required_during_scheduling_ignored_during_execution or []) if affinity else []


def _violates_existing_anti_affinity(pod: Pod, labels: dict[str, str], snap: Snapshot) -> bool:
    return any(term_selects(term, other, pod) and _same_domain(labels, where, term.topology_key)
               for other, where in snap.placed() if other.spec.affinity
               for term in _required(other, "pod_anti_affinity"))


def _satisfies_affinity(pod: Pod, labels: dict[str, str], snap: Snapshot,
                        terms: list[PodAffinityTerm]) -> bool:
    if any(term.topology_key not in labels for term in terms):
        return False
    matching = [(other, where) for other, where in snap.placed()
                if all(term_selects(t, pod, other) for t in terms)]
    if not matching:  # the first of a group that selects itself
        return all(term_selects(t, pod, pod) for t in terms)
    return all(any(_same_domain(labels, where, t.topology_key) for _, where in matching)
               for t in terms)


def inter_pod_affinity(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """Kubernetes' InterPodAffinity filter."""
    labels = node.metadata.labels or {}
    if _violates_existing_anti_affinity(pod, labels, snap):
        return EXISTING_ANTI_AFFINITY
    terms = _required(pod, "pod_affinity")
    if terms and not _satisfies_affinity(pod, labels, snap, terms):
        return AFFINITY_MISMATCH
    for term in _required(pod, "pod_anti_affinity"):
        if any(term_selects(term, pod, other) and _same_domain(labels, where, term.topology_key)
               for other, where in snap.placed()):
            return ANTI_AFFINITY_MISMATCH
    return None


def _preferred_terms(pod: Pod) -> Iterator[tuple[int, PodAffinityTerm]]:
    """(signed weight, term): positive for affinity, negative for anti-affinity."""
    affinity = pod.spec.affinity
    if affinity is None:
        return
    for sign, rules in ((1, affinity.pod_affinity), (-1, affinity.pod_anti_affinity)):
        for weighted in (rules.preferred_during_scheduling_ignored_during_execution or []
                         if rules else []):
            yield sign * weighted.weight, weighted.pod_affinity_term


def preferred_affinity_score(pod: Pod, node: Node, snap: Snapshot) -> int:
    """Kubernetes' InterPodAffinity score before normalising: the weights of the preferred
    terms each placed pod in the node's domain satisfies, both ways round."""
    labels = node.metadata.labels or {}
    score = 0
    own = list(_preferred_terms(pod))
    for other, where in snap.placed():
        for weight, term in own:
            if term_selects(term, pod, other) and _same_domain(labels, where, term.topology_key):
                score += weight
        if other.spec.affinity is None:
            continue
        theirs = [*_preferred_terms(other),
                  *((HARD_POD_AFFINITY_WEIGHT, t) for t in _required(other, "pod_affinity"))]
        for weight, term in theirs:
            if term_selects(term, other, pod) and _same_domain(labels, where, term.topology_key):
                score += weight
    return score


# -- topology spread ----------------------------------------------------------------------

def _spread_selects(constraint: TopologySpreadConstraint, owner: Pod, other: Pod) -> bool:
    selector = constraint.label_selector
    return (selector is not None and other.metadata.namespace == owner.metadata.namespace
            and other.metadata.deletion_timestamp is None
            and selector.matches(other.metadata.labels))


def _eligible(pod: Pod, node: Node, constraint: TopologySpreadConstraint,
              keys: list[str]) -> bool:
    labels = node.metadata.labels or {}
    if any(k not in labels for k in keys):
        return False
    if constraint.node_affinity_policy != "Ignore" and \
            not fits_node_affinity(pod.spec.node_selector, pod.spec.affinity, node):
        return False
    return constraint.node_taints_policy != "Honor" or untolerated_taint(
        node.spec.taints or [], pod.spec.tolerations or [], ("NoSchedule", "NoExecute")) is None


def domain_counts(pod: Pod, constraint: TopologySpreadConstraint, snap: Snapshot,
                  keys: list[str]) -> dict[str, int]:
    """Matching pods per domain, over the nodes the constraint counts (every domain listed)."""
    counts: dict[str, int] = {}
    for node in snap.nodes:
        if not _eligible(pod, node, constraint, keys):
            continue
        domain = (node.metadata.labels or {})[constraint.topology_key]
        found = sum(1 for other in snap.on_node.get(node.metadata.name or "", [])
                    if _spread_selects(constraint, pod, other))
        counts[domain] = counts.get(domain, 0) + found
    return counts


def _constraints(pod: Pod, when: str) -> list[TopologySpreadConstraint]:
    return [c for c in pod.spec.topology_spread_constraints or [] if c.when_unsatisfiable == when]


def topology_spread(pod: Pod, node: Node, snap: Snapshot) -> str | None:
    """Kubernetes' PodTopologySpread filter (``DoNotSchedule`` constraints)."""
    constraints = _constraints(pod, "DoNotSchedule")
    labels = node.metadata.labels or {}
    keys = [c.topology_key for c in constraints]
    if any(k not in labels for k in keys):
        return SPREAD_MISSING_LABEL
    for c in constraints:
        counts = domain_counts(pod, c, snap, keys)
        lowest = min(counts.values()) if counts else 0
        if c.min_domains is not None and len(counts) < c.min_domains:
            lowest = 0
        own = 1 if _spread_selects(c, pod, pod) else 0
        if counts.get(labels[c.topology_key], 0) + own - lowest > c.max_skew:
            return SPREAD_MISMATCH
    return None


def spread_score(pod: Pod, node: Node, snap: Snapshot) -> int | None:
    """``ScheduleAnyway`` constraints: matching pods in the node's domains (fewer is better);
    None when the pod has none."""
    constraints = _constraints(pod, "ScheduleAnyway")
    if not constraints:
        return None
    labels = node.metadata.labels or {}
    keys = [c.topology_key for c in constraints]
    total = 0
    for c in constraints:
        counts = domain_counts(pod, c, snap, keys)
        # a node without the key is the worst place, as Kubernetes scores it
        total += counts.get(labels.get(c.topology_key, ""), max(counts.values(), default=0) + 1)
    return total
