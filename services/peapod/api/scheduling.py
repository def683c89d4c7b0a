"""The Pod fields that steer scheduling, as Kubernetes' core/v1 defines them.

``tolerations``, ``affinity`` (node, pod and pod anti-affinity),
``topologySpreadConstraints`` and ``schedulingGates``, their validation in
Kubernetes' words (``ValidateTolerations``, ``ValidateAffinity``,
``validateTopologySpreadConstraints``, ``validateSchedulingGates``), and the
matching rules every component shares: whether a toleration tolerates a
taint (the scheduler, the DaemonSet controller, node lifecycle) and whether
a node selector term matches a node. The scheduler's filters and scores
build on these in ``peapod.scheduler``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from peapod.api.base import DNS1123_SUBDOMAIN, Model, check_dns1123_label, check_dns1123_subdomain
from peapod.api.labelselector import LabelSelector, requirement_problems
from peapod.api.node import Node, Taint

if TYPE_CHECKING:
    from peapod.api.pod import PodSpec

DEFAULT_SCHEDULER = "default-scheduler"
SCHEDULING_GATED = "SchedulingGated"
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"
NODE_NAME_FIELD = "metadata.name"
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Toleration(Model):
    key: str | None = None
    # Kubernetes' Lt and Gt sit behind an alpha feature gate that is off by default: refused here
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' ``Toleration.ToleratesTaint``."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return (self.value or "") == (taint.value or "")


class NodeSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: list[str] | None = None


class NodeSelectorTerm(Model):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(Model):
    node_selector_terms: list[NodeSelectorTerm]


class PreferredSchedulingTerm(Model):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(Model):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(Model):
    label_selector: LabelSelector | None = None
    namespaces: list[str] | None = None
    topology_key: str = ""


class WeightedPodAffinityTerm(Model):
    weight: int
    pod_affinity_term: PodAffinityTerm


class PodAffinity(Model):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class Affinity(Model):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class TopologySpreadConstraint(Model):
    max_skew: int
    topology_key: str
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: LabelSelector | None = None
    min_domains: int | None = None
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    node_taints_policy: Literal["Honor", "Ignore"] | None = None


class PodSchedulingGate(Model):
    name: str


# -- matching -----------------------------------------------------------------------------

def untolerated_taint(taints: Iterable[Taint], tolerations: Iterable[Toleration],
                      effects: Iterable[str]) -> Taint | None:
    """The first taint of ``effects`` that no toleration tolerates (Kubernetes'
    ``FindMatchingUntoleratedTaint``), or None."""
    wanted, tolerations = set(effects), list(tolerations)
    return next((t for t in taints
                 if t.effect in wanted and not any(tol.tolerates(t) for tol in tolerations)), None)


def format_taint(taint: Taint) -> str:
    """A taint as the scheduler's message shows it: ``{key: value}``."""
    return f"{{{taint.key}: {taint.value or ''}}}"


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def requirement_matches(req: NodeSelectorRequirement, values: dict[str, str]) -> bool:
    """One ``matchExpressions`` (or ``matchFields``) requirement against a node's labels."""
    present, value = req.key in values, values.get(req.key, "")
    if req.operator == "In":
        return present and value in (req.values or [])
    if req.operator == "NotIn":
        return not present or value not in (req.values or [])
    if req.operator == "Exists":
        return present
    if req.operator == "DoesNotExist":
        return not present
    have, bound = _number(value), _number((req.values or [""])[0])
    if not present or have is None or bound is None:
        return False
    return have > bound if req.operator == "Gt" else have < bound


def term_matches(term: NodeSelectorTerm, node: Node) -> bool:
    """Every requirement of the term holds; a term with none matches no node (Kubernetes)."""
    if not term.match_expressions and not term.match_fields:
        return False
    labels = node.metadata.labels or {}
    fields = {NODE_NAME_FIELD: node.metadata.name or ""}
    return (all(requirement_matches(r, labels) for r in term.match_expressions or [])
            and all(requirement_matches(r, fields) for r in term.match_fields or []))


def node_selector_matches(selector: NodeSelector, node: Node) -> bool:
    """The terms are ORed."""
    return any(term_matches(term, node) for term in selector.node_selector_terms)


def fits_node_affinity(node_selector: dict[str, str] | None, affinity: Affinity | None,
                       node: Node) -> bool:
    """``nodeSelector`` and the required node affinity both hold (Kubernetes'
    ``RequiredNodeAffinity.Match``)."""
    labels = node.metadata.labels or {}
    if any(labels.get(k) != v for k, v in (node_selector or {}).items()):
        return False
    node_affinity = affinity.node_affinity if affinity else None
    required = node_affinity.required_during_scheduling_ignored_during_execution \
        if node_affinity else None
    return required is None or node_selector_matches(required, node)


# -- validation ---------------------------------------------------------------------------

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QUALIFIED_RULE = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                   "start and end with an alphanumeric character (e.g. 'MyName',  or "
                   "'my.name',  or '123-abc', regex used for validation is "
                   "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def qualified_name_problems(path: str, value: str) -> list[str]:
    """Kubernetes' ``IsQualifiedName``: ``[prefix/]name`` (label keys, gate names)."""
    prefix, slash, name = value.rpartition("/")
    problems = []
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        problems.append(f"{path}: Invalid value: {value!r}: prefix part a lowercase RFC 1123 "
                        "subdomain must consist of lower case alphanumeric characters, '-' or "
                        "'.', and must start and end with an alphanumeric character")
    if not name:
        problems.append(f"{path}: Invalid value: {value!r}: name part must be non-empty")
    elif len(name) > 63 or not _QUALIFIED_NAME.match(name):
        problems.append(f"{path}: Invalid value: {value!r}: {_QUALIFIED_RULE}")
    return problems


def _label_value_problems(path: str, value: str) -> list[str]:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return [f"{path}: Invalid value: {value!r}: a valid label must be an empty string or "
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character"]
    return []


def toleration_problems(tolerations: list[Toleration]) -> list[str]:
    """Kubernetes' ``ValidateTolerations``."""
    problems: list[str] = []
    for i, tol in enumerate(tolerations):
        path = f"spec.tolerations[{i}]"
        if tol.key:
            problems.extend(qualified_name_problems(f"{path}.key", tol.key))
        elif tol.operator != "Exists":
            problems.append(f'{path}.operator: Invalid value: "{tol.operator or ""}": operator '
                            'must be Exists when `key` is empty, which means "match all values '
                            'and all keys"')
        if tol.toleration_seconds is not None and tol.effect != "NoExecute":
            problems.append(f'{path}.effect: Invalid value: "{tol.effect or ""}": effect must be '
                            "'NoExecute' when `tolerationSeconds` is set")
        if tol.operator == "Exists" and tol.value:
            problems.append(f"{path}.operator: Invalid value: {tol.value!r}: value must be empty "
                            "when `operator` is 'Exists'")
        elif tol.operator != "Exists" and tol.value:
            problems.extend(_label_value_problems(f"{path}.operator", tol.value))
    return problems


def _requirement_problems(path: str, req: NodeSelectorRequirement, *, field: bool) -> list[str]:
    """Kubernetes' ``ValidateNodeSelectorRequirement`` and ``…FieldSelectorRequirement``."""
    problems: list[str] = []
    values = req.values or []
    if req.operator in ("In", "NotIn") and not values:
        problems.append(f"{path}.values: Required value: must be specified when `operator` is "
                        "'In' or 'NotIn'")
    elif req.operator in ("Exists", "DoesNotExist") and values:
        problems.append(f"{path}.values: Forbidden: may not be specified when `operator` is "
                        "'Exists' or 'DoesNotExist'")
    elif req.operator in ("Gt", "Lt") and (len(values) != 1 or _number(values[0]) is None):
        problems.append(f"{path}.values: Required value: must be specified single value when "
                        "`operator` is 'Lt' or 'Gt'")
    if not field:
        return problems + qualified_name_problems(f"{path}.key", req.key)
    if req.key != NODE_NAME_FIELD:
        problems.append(f'{path}.key: Invalid value: "{req.key}": must be '
                        f"'{NODE_NAME_FIELD}'")
    if req.operator not in ("In", "NotIn"):
        problems.append(f'{path}.operator: Unsupported value: "{req.operator}": supported '
                        'values: "In", "NotIn"')
    elif len(values) != 1:
        problems.append(f"{path}.values: Required value: must be only one value when "
                        "`operator` is 'In' or 'NotIn' for node field selector")
    return problems


def _term_problems(path: str, term: NodeSelectorTerm) -> list[str]:
    problems: list[str] = []
    for j, req in enumerate(term.match_expressions or []):
        problems.extend(_requirement_problems(f"{path}.matchExpressions[{j}]", req, field=False))
    for j, req in enumerate(term.match_fields or []):
        problems.extend(_requirement_problems(f"{path}.matchFields[{j}]", req, field=True))
    return problems


def node_selector_problems(path: str, selector: NodeSelector) -> list[str]:
    """A required node selector (a PersistentVolume's ``nodeAffinity.required``)."""
    if not selector.node_selector_terms:
        return [f"{path}.nodeSelectorTerms: Required value: must have at least one node "
                "selector term"]
    problems: list[str] = []
    for i, term in enumerate(selector.node_selector_terms):
        problems.extend(_term_problems(f"{path}.nodeSelectorTerms[{i}]", term))
    return problems


def _weight_problem(path: str, weight: int) -> list[str]:
    if 1 <= weight <= 100:
        return []
    return [f"{path}: Invalid value: {weight}: must be in the range 1-100"]


def _node_affinity_problems(path: str, affinity: NodeAffinity) -> list[str]:
    problems: list[str] = []
    required = affinity.required_during_scheduling_ignored_during_execution
    if required is not None:
        where = f"{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        if not required.node_selector_terms:
            problems.append(f"{where}: Required value: must have at least one node selector term")
        for i, term in enumerate(required.node_selector_terms):
            problems.extend(_term_problems(f"{where}[{i}]", term))
    for i, pref in enumerate(affinity.preferred_during_scheduling_ignored_during_execution or []):
        where = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        problems.extend(_weight_problem(f"{where}.weight", pref.weight))
        problems.extend(_term_problems(f"{where}.preference", pref.preference))
    return problems


def _affinity_term_problems(path: str, term: PodAffinityTerm) -> list[str]:
    problems: list[str] = []
    if not term.topology_key:
        problems.append(f"{path}.topologyKey: Required value: can not be empty")
    else:
        problems.extend(qualified_name_problems(f"{path}.topologyKey", term.topology_key))
    if term.label_selector is not None:
        problems.extend(requirement_problems(f"{path}.labelSelector", term.label_selector))
    for j, namespace in enumerate(term.namespaces or []):
        try:
            check_dns1123_label(namespace)
        except ValueError as exc:
            problems.append(f"{path}.namespaces[{j}]: Invalid value: {namespace!r}: {exc}")
    return problems


def _pod_affinity_problems(path: str, affinity: PodAffinity) -> list[str]:
    problems: list[str] = []
    required = affinity.required_during_scheduling_ignored_during_execution or []
    for i, term in enumerate(required):
        problems.extend(_affinity_term_problems(
            f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]", term))
    preferred = affinity.preferred_during_scheduling_ignored_during_execution or []
    for i, weighted in enumerate(preferred):
        where = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        problems.extend(_weight_problem(f"{where}.weight", weighted.weight))
        problems.extend(_affinity_term_problems(f"{where}.podAffinityTerm",
                                                weighted.pod_affinity_term))
    return problems


def affinity_problems(affinity: Affinity) -> list[str]:
    """Kubernetes' ``validateAffinity``."""
    problems: list[str] = []
    if affinity.node_affinity is not None:
        problems.extend(_node_affinity_problems("spec.affinity.nodeAffinity",
                                                affinity.node_affinity))
    if affinity.pod_affinity is not None:
        problems.extend(_pod_affinity_problems("spec.affinity.podAffinity", affinity.pod_affinity))
    if affinity.pod_anti_affinity is not None:
        problems.extend(_pod_affinity_problems("spec.affinity.podAntiAffinity",
                                               affinity.pod_anti_affinity))
    return problems


def spread_problems(constraints: list[TopologySpreadConstraint]) -> list[str]:
    """Kubernetes' ``validateTopologySpreadConstraints``."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints):
        path = f"spec.topologySpreadConstraints[{i}]"
        if c.max_skew <= 0:
            problems.append(f"{path}.maxSkew: Invalid value: {c.max_skew}: must be greater "
                            "than zero")
        if not c.topology_key:
            problems.append(f"{path}.topologyKey: Required value: can not be empty")
        else:
            problems.extend(qualified_name_problems(f"{path}.topologyKey", c.topology_key))
        if c.min_domains is not None:
            if c.min_domains <= 0:
                problems.append(f"{path}.minDomains: Invalid value: {c.min_domains}: must be "
                                "greater than zero")
            elif c.when_unsatisfiable != "DoNotSchedule":
                problems.append(f"{path}.minDomains: Invalid value: {c.min_domains}: can only "
                                "use minDomains if whenUnsatisfiable=DoNotSchedule, not "
                                f"{c.when_unsatisfiable}")
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            problems.append(f'{path}: Duplicate value: "{{{c.topology_key}, '
                            f'{c.when_unsatisfiable}}}"')
        seen.add(pair)
        if c.label_selector is not None:
            problems.extend(requirement_problems(f"{path}.labelSelector", c.label_selector))
    return problems


def gate_problems(gates: list[PodSchedulingGate]) -> list[str]:
    """Kubernetes' ``validateSchedulingGates``: qualified names, no duplicates."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, gate in enumerate(gates):
        problems.extend(qualified_name_problems(f"spec.schedulingGates[{i}].name", gate.name))
        if gate.name in seen:
            problems.append(f'spec.schedulingGates[{i}]: Duplicate value: "{gate.name}"')
        seen.add(gate.name)
    return problems


def name_problems(path: str, value: str | None) -> list[str]:
    """``schedulerName``, ``priorityClassName``, ``serviceAccountName``: DNS-1123 subdomains."""
    if value is None:
        return []
    try:
        check_dns1123_subdomain(value)
    except ValueError as exc:
        return [f"{path}: Invalid value: {value!r}: {exc}"]
    return []



def scheduling_problems(spec: PodSpec) -> list[str]:
    """Every scheduling field of a pod spec, each problem with its path."""
    problems = [*name_problems("spec.schedulerName", spec.scheduler_name),
                *name_problems("spec.priorityClassName", spec.priority_class_name),
                *name_problems("spec.serviceAccountName", spec.service_account_name),
                *toleration_problems(spec.tolerations or []),
                *spread_problems(spec.topology_spread_constraints or []),
                *gate_problems(spec.scheduling_gates or [])]
    if spec.affinity is not None:
        problems.extend(affinity_problems(spec.affinity))
    if spec.node_name and spec.scheduling_gates:
        problems.append("spec.nodeName: Forbidden: cannot be set until all schedulingGates have "
                        "been cleared")
    return problems
