"""A Deployment's arithmetic: the template hash, maxSurge/maxUnavailable and each step's counts.

Pure functions, Kubernetes' rules from ``pkg/controller/deployment``:

* **pod-template-hash** (``ComputeHash``): FNV-32a over the pod template
  and, when set, ``status.collisionCount`` (as eight bytes, a little-endian
  uint32 then four zero bytes), printed in decimal and each digit mapped
  into the alphabet ``bcdfghjklmnpqrstvwxz2456789`` (``rand.SafeEncodeString``).
  The one difference: Kubernetes hashes Go's ``spew`` dump of its
  ``PodTemplateSpec`` struct, which Python cannot reproduce byte for byte;
  peapod hashes the template's canonical JSON (keys sorted, no spaces, the
  template as stored after defaulting). So the shape and the alphabet are
  Kubernetes' (``web-6b7c9d5f4b``), the same template always gives the same
  hash here, but not the value Kubernetes would print for it.
* **fenceposts** (``ResolveFenceposts``): ``maxSurge`` rounds a percentage
  up, ``maxUnavailable`` down; if both come to 0, one pod may be unavailable.
* **rolling update**: the new ReplicaSet grows while the total stays within
  ``replicas + maxSurge`` (``NewRSNewReplicas``); old ones shrink while at
  least ``replicas - maxUnavailable`` pods stay available, unhealthy old
  pods first (``reconcileOldReplicaSets``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

from peapod.api.apps import (
    APPS_V1,
    POD_TEMPLATE_HASH,
    REVISION_ANNOTATION,
    Deployment,
    PodTemplateSpec,
    ReplicaSet,
)

HASH_LABEL, REVISION = POD_TEMPLATE_HASH, REVISION_ANNOTATION
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193


def fnv32a(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """apimachinery's ``rand.SafeEncodeString``: each character into the vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[ord(char) % len(SAFE_ALPHABET)] for char in text)


def template_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    data = json.dumps(template.to_wire(), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + bytes(4)
    return safe_encode(str(fnv32a(data)))


def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """``GetScaledValueFromIntOrPercent``: an int as it is, ``"25%"`` of ``total``, rounded."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    exact = int(value.rstrip("%")) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(deploy: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods for the Deployment's replicas."""
    rolling = deploy.spec.strategy.rolling_update
    if deploy.spec.strategy.type != "RollingUpdate" or rolling is None:
        return 0, 0
    surge = scaled_value(rolling.max_surge, deploy.spec.replicas, round_up=True)
    unavailable = scaled_value(rolling.max_unavailable, deploy.spec.replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def template_without_hash(template: PodTemplateSpec) -> dict[str, object]:
    wire = template.to_wire()
    labels = dict(wire.get("metadata", {}).get("labels") or {})
    labels.pop(HASH_LABEL, None)
    meta = {**wire.get("metadata", {}), "labels": labels}
    if not labels:
        meta.pop("labels")
    return {**wire, "metadata": meta}


def same_template(rs: ReplicaSet, deploy: Deployment) -> bool:
    """``EqualIgnoreHash``: the ReplicaSet runs the Deployment's template."""
    return template_without_hash(rs.spec.template) == template_without_hash(deploy.spec.template)


def revision_of(rs: ReplicaSet) -> int:
    value = (rs.metadata.annotations or {}).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def new_replicaset(deploy: Deployment, *, hash_: str, revision: int, replicas: int) -> ReplicaSet:
    """``<deployment>-<hash>``, labelled and selected by the hash, owned by the Deployment."""
    from peapod.controllers.claiming import controller_reference
    meta = deploy.metadata
    template = deploy.spec.template.model_copy(deep=True)
    template.metadata.labels = {**(template.metadata.labels or {}), HASH_LABEL: hash_}
    selector = (deploy.spec.selector.model_copy(deep=True) if deploy.spec.selector else None)
    assert selector is not None
    selector.match_labels = {**(selector.match_labels or {}), HASH_LABEL: hash_}
    return ReplicaSet.model_validate({
        "apiVersion": APPS_V1, "kind": "ReplicaSet",
        "metadata": {"name": f"{meta.name}-{hash_}", "namespace": meta.namespace,
                     "labels": {**(template.metadata.labels or {})},
                     "annotations": {REVISION: str(revision)},
                     "ownerReferences": [controller_reference(
                         "Deployment", meta.name or "", meta.uid or "").to_wire()]},
        "spec": {"replicas": replicas, "selector": selector.to_wire(),
                 "template": template.to_wire()}})


def desired(rs: ReplicaSet) -> int:
    return rs.spec.replicas


def available(rs: ReplicaSet) -> int:
    return (rs.status.available_replicas or 0) if rs.status else 0


def new_rs_replicas(deploy: Deployment, all_rs: list[ReplicaSet], new: ReplicaSet) -> int:
    """``NewRSNewReplicas``: how big the new ReplicaSet may be now."""
    if deploy.spec.strategy.type == "Recreate":
        return deploy.spec.replicas
    surge, _ = fenceposts(deploy)
    current = sum(desired(rs) for rs in all_rs)
    if current >= deploy.spec.replicas + surge:
        return desired(new)
    grow = min(deploy.spec.replicas + surge - current, deploy.spec.replicas - desired(new))
    return desired(new) + max(grow, 0)


@dataclass(frozen=True)
class ScaleDown:
    rs: ReplicaSet
    to: int


def old_scale_downs(deploy: Deployment, old: list[ReplicaSet], new: ReplicaSet | None
                    ) -> list[ScaleDown]:
    """``reconcileOldReplicaSets``: how far each old ReplicaSet may shrink now, oldest first."""
    active = [rs for rs in old if desired(rs) > 0]
    if not active:
        return []
    _, unavailable = fenceposts(deploy)
    min_available = deploy.spec.replicas - unavailable
    all_rs = [*old, *([new] if new else [])]
    new_unavailable = (desired(new) - available(new)) if new else 0
    budget = sum(desired(rs) for rs in all_rs) - min_available - new_unavailable
    if budget <= 0:
        return []
    targets = {id(rs): desired(rs) for rs in active}
    ordered = sorted(active, key=lambda rs: rs.metadata.creation_timestamp or "")
    for rs in ordered:  # unhealthy pods first: they serve nobody
        cut = min(budget, max(desired(rs) - available(rs), 0))
        targets[id(rs)] -= cut
        budget -= cut
    available_now = sum(available(rs) for rs in all_rs)
    spare = available_now - min_available
    for rs in ordered:
        if spare <= 0:
            break
        cut = min(targets[id(rs)], spare)
        targets[id(rs)] -= cut
        spare -= cut
    return [ScaleDown(rs, targets[id(rs)]) for rs in ordered if targets[id(rs)] != desired(rs)]
