"""What a ReplicaSet owns, what it should make or remove: pure functions over cached objects.

These are Kubernetes' rules from ``pkg/controller`` (ClaimPods,
FilterActivePods, ActivePodsWithRanks, calculateStatus), written as
functions of (ReplicaSet, pods) so they are tested without a cluster:

* a pod belongs to the ReplicaSet whose uid is in its controller reference;
  an orphan (no controller reference) whose labels match the selector is
  adopted; an owned pod whose labels no longer match is released;
* only *active* pods count: not being deleted, not Succeeded or Failed. A
  failed pod is replaced (and left for people to read, as Kubernetes does);
* surplus pods go in Kubernetes' order: unscheduled before scheduled,
  Pending before Unknown before Running, not ready before ready, more
  restarts before fewer, newer before older.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from peapod.api import ObjectMeta, OwnerReference, Pod
from peapod.api.apps import (
    PodTemplateSpec,
    ReplicaSet,
    ReplicaSetCondition,
    ReplicaSetStatus,
)
from peapod.api.labelselector import LabelSelector

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
Owned = TypeVar("Owned", Pod, ReplicaSet)  # pods for a ReplicaSet, ReplicaSets for a Deployment


def is_active(pod: Pod) -> bool:
    phase = pod.status.phase if pod.status else None
    return pod.metadata.deletion_timestamp is None and phase not in ("Succeeded", "Failed")


def is_ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def controller_reference(owner_kind: str, name: str, uid: str) -> OwnerReference:
    api_version = "batch/v1" if owner_kind in ("Job", "CronJob") else "apps/v1"
    return OwnerReference(api_version=api_version, kind=owner_kind, name=name, uid=uid,
                          controller=True, block_owner_deletion=True)


@dataclass
class Claim(Generic[Owned]):
    owned: list[Owned] = field(default_factory=list)  # including adopted
    adopt: list[Owned] = field(default_factory=list)
    release: list[Owned] = field(default_factory=list)


def claim_pods(owner_uid: str, selector: LabelSelector, pods: list[Owned], *,
               owner_deleting: bool) -> Claim[Owned]:
    """Kubernetes' ClaimPods (and ClaimReplicaSets): owned and adopted, and those to release."""
    claim: Claim[Owned] = Claim()
    for pod in pods:
        ref = pod.metadata.controller_ref()
        matches = selector.matches(pod.metadata.labels)
        if ref is not None and ref.uid != owner_uid:
            continue
        if ref is not None:
            if matches:
                claim.owned.append(pod)
            elif pod.metadata.deletion_timestamp is None:
                claim.release.append(pod)
        elif matches and not owner_deleting and pod.metadata.deletion_timestamp is None:
            claim.adopt.append(pod)
            claim.owned.append(pod)
    return claim


def deletion_rank(pod: Pod) -> tuple[int, int, int, int, str]:
    """Smaller goes first (ActivePodsWithRanks, without the co-location rank)."""
    phase = pod.status.phase if pod.status else None
    restarts = sum(c.restart_count for c in (pod.status.container_statuses or [])
                   ) if pod.status else 0
    created = pod.metadata.creation_timestamp or ""
    newer_first = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (1 if pod.spec.node_name else 0, _PHASE_RANK.get(phase or "", 0),
            1 if is_ready(pod) else 0, -restarts, newer_first)


def pods_to_delete(pods: list[Pod], count: int) -> list[Pod]:
    return sorted(pods, key=deletion_rank)[:count]


def new_pod(template: PodTemplateSpec, *, namespace: str, prefix: str,
            owner: OwnerReference, finalizers: list[str] | None = None) -> Pod:
    """A pod from the template, named ``<prefix><5 random>`` by the apiserver (generateName)."""
    meta = template.metadata
    return Pod(metadata=ObjectMeta(generate_name=prefix, namespace=namespace,
                                   labels=dict(meta.labels or {}) or None,
                                   annotations=dict(meta.annotations or {}) or None,
                                   owner_references=[owner], finalizers=finalizers),
               spec=template.spec.model_copy(deep=True))


def replicaset_status(rs: ReplicaSet, active: list[Pod], *,
                      failure: str | None = None) -> ReplicaSetStatus:
    """calculateStatus: counts of the active owned pods, and ReplicaFailure when a write failed."""
    template_labels = rs.spec.template.metadata.labels or {}
    ready = sum(1 for p in active if is_ready(p))
    labeled = sum(1 for p in active
                  if all((p.metadata.labels or {}).get(k) == v for k, v in template_labels.items()))
    previous = rs.status.conditions if rs.status and rs.status.conditions else []
    conditions = [c for c in previous if c.type != "ReplicaFailure"]
    if failure is not None:
        old = next((c for c in previous if c.type == "ReplicaFailure"), None)
        conditions.append(old if old and old.message == failure else ReplicaSetCondition(
            type="ReplicaFailure", status="True", reason="FailedCreate", message=failure))
    return ReplicaSetStatus(replicas=len(active), fully_labeled_replicas=labeled,
                            ready_replicas=ready, available_replicas=ready,
                            observed_generation=rs.metadata.generation,
                            conditions=conditions or None)
