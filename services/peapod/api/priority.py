"""PriorityClass, as Kubernetes' scheduling.k8s.io/v1 defines it, and how a pod gets its priority.

A PriorityClass is cluster-scoped: a name for an integer ``value``. The
apiserver's priority admission resolves a pod's ``priorityClassName`` to
``spec.priority`` and ``spec.preemptionPolicy`` when the pod is created
(``resolve_priority``); the scheduler then only reads those two fields: it
pops higher priority first and, for a pod that fits nowhere, preempts pods
of lower priority (``scheduler/preemption.py``).

The rules are Kubernetes': user classes have values up to one billion;
names starting with ``system-`` are reserved for the two built-in classes
(``system-cluster-critical``, ``system-node-critical``), which exist from
the start and cannot be deleted; at most one class is the ``globalDefault``,
whose value (and name) a pod without a class gets, else priority 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.base import Model
from peapod.api.meta import ObjectMeta

PreemptionPolicy = Literal["PreemptLowerPriority", "Never"]
PREEMPT_LOWER_PRIORITY: PreemptionPolicy = "PreemptLowerPriority"
NEVER: PreemptionPolicy = "Never"

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PREFIX = "system-"
DEFAULT_PRIORITY = 0  # Kubernetes' DefaultPriorityWhenNoDefaultClassExists
API_VERSION = "scheduling.k8s.io/v1"


class PriorityClass(Model):
    api_version: Literal["scheduling.k8s.io/v1"] = "scheduling.k8s.io/v1"
    kind: Literal["PriorityClass"] = "PriorityClass"
    metadata: ObjectMeta
    value: int = Field(ge=-(2**31), le=2**31 - 1)
    global_default: bool | None = None
    description: str | None = None
    preemption_policy: PreemptionPolicy | None = None


def _system(name: str, value: int, description: str) -> PriorityClass:
    return PriorityClass(metadata=ObjectMeta(name=name), value=value, description=description,
                         preemption_policy=PREEMPT_LOWER_PRIORITY)


# Kubernetes' SystemPriorityClasses(): created by every apiserver at start, never deleted
SYSTEM_PRIORITY_CLASSES = (
    _system("system-node-critical", SYSTEM_CRITICAL_PRIORITY + 1000,
            "Used for system critical pods that must not be moved from their current node."),
    _system("system-cluster-critical", SYSTEM_CRITICAL_PRIORITY,
            "Used for system critical pods that must run in the cluster, but can be moved to "
            "another node if necessary."),
)
SYSTEM_NAMES = frozenset(pc.metadata.name for pc in SYSTEM_PRIORITY_CLASSES)


def priority_class_problems(pc: PriorityClass) -> list[str]:
    """Kubernetes' ValidatePriorityClass (the name is checked with the metadata)."""
    name = pc.metadata.name or ""
    if name.startswith(SYSTEM_PREFIX):
        known = next((s for s in SYSTEM_PRIORITY_CLASSES if s.metadata.name == name), None)
        if known is None or known.value != pc.value or pc.global_default:
            return [f"metadata.name: Forbidden: priority class names with '{SYSTEM_PREFIX}' "
                    "prefix are reserved for system use only. error: "
                    f"{name} is not a known system priority class"]
        return []
    if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY:
        return ["value: Forbidden: maximum allowed value of a user defined priority is "
                f"{HIGHEST_USER_DEFINABLE_PRIORITY}"]
    return []


def update_problems(stored: PriorityClass, incoming: PriorityClass) -> list[str]:
    """Kubernetes' ValidatePriorityClassUpdate: value and preemptionPolicy never change."""
    problems = []
    if incoming.value != stored.value:
        problems.append("value: Forbidden: may not be changed in an update.")
    if (incoming.preemption_policy or PREEMPT_LOWER_PRIORITY) != stored.preemption_policy:
        problems.append(f'preemptionPolicy: Invalid value: "{incoming.preemption_policy}": '
                        "field is immutable")
    return problems


def global_default(classes: list[PriorityClass]) -> PriorityClass | None:
    """The class marked ``globalDefault`` (Kubernetes takes the lowest value if several)."""
    defaults = [pc for pc in classes if pc.global_default]
    return min(defaults, key=lambda pc: pc.value) if defaults else None


def pod_priority(priority: int | None) -> int:
    """A pod's priority as the scheduler reads it: unset (a pod stored before admission
    resolved classes, a mirror pod) is 0."""
    return DEFAULT_PRIORITY if priority is None else priority
