"""PersistentVolume and PersistentVolumeClaim, as Kubernetes' core/v1 defines them.

A PersistentVolume (cluster-scoped) is storage on a node: a ``hostPath`` or
a ``local`` directory (every other source is refused as ``unknown field``);
a PersistentVolumeClaim (namespaced) asks for storage, and the binding
controller (``peapod.controllers.volumes``) binds it to a PersistentVolume
that fits. Field names, defaults (``persistentVolumeReclaimPolicy: Retain``,
``volumeMode: Filesystem``, phase ``Pending``) and the validation wording are
Kubernetes'. ``volumeMode: Block`` is refused: peapod mounts filesystems only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from peapod.api.base import Model, check_dns1123_subdomain
from peapod.api.labelselector import LabelSelector, requirement_problems
from peapod.api.meta import ObjectMeta, ObjectReference
from peapod.api.node import Node
from peapod.api.pod import HostPathVolumeSource
from peapod.api.quantity import parse_quantity
from peapod.api.scheduling import NodeSelector, node_selector_matches, node_selector_problems

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
_SUPPORTED_MODES = ", ".join(f'"{m}"' for m in ACCESS_MODES)


class LocalVolumeSource(Model):
    path: str
    fs_type: str | None = None


class VolumeNodeAffinity(Model):
    required: NodeSelector | None = None


class PersistentVolumeSpec(Model):
    capacity: dict[str, str | int] | None = None
    access_modes: list[str] | None = None
    persistent_volume_reclaim_policy: str = "Retain"
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"
    host_path: HostPathVolumeSource | None = None
    local: LocalVolumeSource | None = None
    node_affinity: VolumeNodeAffinity | None = None
    claim_ref: ObjectReference | None = None


class PersistentVolumeStatus(Model):
    phase: Literal["Pending", "Available", "Bound", "Released", "Failed"] | None = None
    message: str | None = None
    reason: str | None = None
    last_phase_transition_time: str | None = None


class PersistentVolume(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["PersistentVolume"] = "PersistentVolume"
    metadata: ObjectMeta
    spec: PersistentVolumeSpec
    status: PersistentVolumeStatus | None = None

    @property
    def phase(self) -> str:
        return (self.status.phase if self.status else None) or "Pending"

    def storage_class(self) -> str:
        return self.spec.storage_class_name or ""

    def size(self) -> Decimal:
        return parse_quantity((self.spec.capacity or {}).get("storage", 0))

    def path(self) -> str:
        """The directory (or file) on the node that holds the volume's data."""
        source = self.spec.host_path or self.spec.local
        return source.path if source else ""

    def fits_node(self, node: Node) -> bool:
        """The PV's ``nodeAffinity`` allows ``node`` (no affinity: every node)."""
        affinity = self.spec.node_affinity
        if affinity is None or affinity.required is None:
            return True
        return node_selector_matches(affinity.required, node)


class VolumeResourceRequirements(Model):
    requests: dict[str, str | int] | None = None
    limits: dict[str, str | int] | None = None


class PersistentVolumeClaimSpec(Model):
    access_modes: list[str] | None = None
    resources: VolumeResourceRequirements | None = None
    selector: LabelSelector | None = None
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"
    volume_name: str | None = None


class PersistentVolumeClaimStatus(Model):
    phase: Literal["Pending", "Bound", "Lost"] | None = None
    access_modes: list[str] | None = None
    capacity: dict[str, str | int] | None = None


class PersistentVolumeClaim(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["PersistentVolumeClaim"] = "PersistentVolumeClaim"
    metadata: ObjectMeta
    spec: PersistentVolumeClaimSpec
    status: PersistentVolumeClaimStatus | None = None

    @property
    def phase(self) -> str:
        return (self.status.phase if self.status else None) or "Pending"

    def storage_class(self) -> str:
        return self.spec.storage_class_name or ""

    def request(self) -> Decimal:
        requests = (self.spec.resources.requests if self.spec.resources else None) or {}
        return parse_quantity(requests.get("storage", 0))


# -- validation, in Kubernetes' words ---------------------------------------------------------

def _access_mode_problems(path: str, modes: list[str] | None, *, claim: bool) -> list[str]:
    if not modes:
        return [f"{path}: Required value" + (": at least 1 access mode is required" if claim
                                             else "")]
    problems = [f'{path}: Unsupported value: "{m}": supported values: {_SUPPORTED_MODES}'
                for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        problems.append(f"{path}: Forbidden: may not use ReadWriteOncePod with other access modes")
    return problems


def _volume_mode_problems(path: str, mode: str) -> list[str]:
    if mode == "Filesystem":
        return []
    if mode == "Block":
        return [f'{path}: Unsupported value: "Block": supported values: "Filesystem" (peapod '
                "mounts filesystems only, it has no raw block devices)"]
    return [f'{path}: Unsupported value: "{mode}": supported values: "Block", "Filesystem"']


def _class_problems(path: str, name: str | None) -> list[str]:
    if not name:
        return []
    try:
        check_dns1123_subdomain(name)
    except ValueError as exc:
        return [f'{path}: Invalid value: "{name}": {exc}']
    return []


def _quantity_problems(path: str, amounts: dict[str, str | int] | None, *, what: str,
                       positive: bool) -> list[str]:
    if not amounts or "storage" not in amounts:
        return [f"{path}: Required value" if what == "capacity" else f"{path}[storage]: "
                "Required value"]
    problems = [f'{path}: Unsupported value: "{k}": supported values: "storage"'
                for k in amounts if k != "storage"]
    value = amounts["storage"]
    try:
        amount = parse_quantity(value)
    except ValueError as exc:
        return [*problems, f"{path}[storage]: {exc}"]
    if positive and amount <= 0:
        problems.append(f'{path}[storage]: Invalid value: "{value}": must be greater than zero')
    return problems


def _source_problems(spec: PersistentVolumeSpec) -> list[str]:
    sources = [(name, src) for name, src in (("hostPath", spec.host_path), ("local", spec.local))
               if src is not None]
    if not sources:
        return ["spec: Required value: must specify a volume type"]
    problems = [f"spec.{name}: Forbidden: may not specify more than 1 volume type"
                for name, _ in sources[1:]]
    for name, src in sources:
        path = src.path if src else ""
        if not path:
            problems.append(f"spec.{name}.path: Required value")
        elif not path.startswith("/"):
            problems.append(f'spec.{name}.path: Invalid value: "{path}": must be an absolute path')
        elif ".." in path.split("/"):
            problems.append(f'spec.{name}.path: Invalid value: "{path}": must not contain \'..\'')
    if spec.local is not None and (spec.node_affinity is None
                                   or spec.node_affinity.required is None):
        problems.append("spec.nodeAffinity: Required value: Local volume requires node affinity")
    return problems


def persistent_volume_problems(pv: PersistentVolume) -> list[str]:
    spec = pv.spec
    problems = _quantity_problems("spec.capacity", spec.capacity, what="capacity",
                                  positive=False)
    problems += _access_mode_problems("spec.accessModes", spec.access_modes, claim=False)
    policy = spec.persistent_volume_reclaim_policy
    if policy == "Recycle":
        problems.append('spec.persistentVolumeReclaimPolicy: Unsupported value: "Recycle": '
                        'supported values: "Delete", "Retain" (Recycle is deprecated in '
                        "Kubernetes and peapod does not recycle volumes)")
    elif policy not in ("Delete", "Retain"):
        problems.append(f'spec.persistentVolumeReclaimPolicy: Unsupported value: "{policy}": '
                        'supported values: "Delete", "Recycle", "Retain"')
    problems += _class_problems("spec.storageClassName", spec.storage_class_name)
    problems += _volume_mode_problems("spec.volumeMode", spec.volume_mode)
    problems += _source_problems(spec)
    if spec.node_affinity is not None:
        if spec.node_affinity.required is None:
            problems.append("spec.nodeAffinity.required: Required value: must specify "
                            "required node constraints")
        else:
            problems += node_selector_problems("spec.nodeAffinity.required",
                                               spec.node_affinity.required)
    return problems


def persistent_volume_claim_problems(pvc: PersistentVolumeClaim) -> list[str]:
    spec = pvc.spec
    problems = _access_mode_problems("spec.accessModes", spec.access_modes, claim=True)
    problems += _quantity_problems("spec.resources", spec.resources.requests
                                   if spec.resources else None, what="request", positive=True)
    problems += _class_problems("spec.storageClassName", spec.storage_class_name)
    problems += _volume_mode_problems("spec.volumeMode", spec.volume_mode)
    if spec.selector is not None:
        problems += requirement_problems("spec.selector", spec.selector)
    return problems


# -- binding -------------------------------------------------------------------------------

def claim_ref_of(pvc: PersistentVolumeClaim) -> ObjectReference:
    """The ``claimRef`` a PersistentVolume bound to ``pvc`` carries."""
    meta = pvc.metadata
    return ObjectReference(kind="PersistentVolumeClaim", namespace=meta.namespace,
                           name=meta.name, uid=meta.uid, api_version="v1",
                           resource_version=meta.resource_version)


def claims(pv: PersistentVolume, pvc: PersistentVolumeClaim) -> bool:
    """``pv``'s ``claimRef`` names ``pvc`` (its uid too, once the ref has one)."""
    ref = pv.spec.claim_ref
    return (ref is not None and ref.name == pvc.metadata.name
            and ref.namespace == pvc.metadata.namespace
            and (not ref.uid or ref.uid == pvc.metadata.uid))


def volume_matches(pv: PersistentVolume, pvc: PersistentVolumeClaim) -> bool:
    """Kubernetes' findMatchingVolume test of one volume against a claim (claimRef aside):
    the same class and volume mode, every access mode the claim asks for, enough capacity,
    the claim's selector."""
    if pv.storage_class() != pvc.storage_class() or pv.spec.volume_mode != pvc.spec.volume_mode:
        return False
    if not set(pvc.spec.access_modes or []) <= set(pv.spec.access_modes or []):
        return False
    if pvc.spec.selector is not None and not pvc.spec.selector.matches(pv.metadata.labels):
        return False
    return pv.size() >= pvc.request()


def best_volume(pvc: PersistentVolumeClaim, volumes: list[PersistentVolume]
                ) -> PersistentVolume | None:
    """The volume to bind ``pvc`` to: one pre-bound to it, else the smallest Available fit."""
    live = [pv for pv in volumes if not pv.metadata.deletion_timestamp]
    prebound = [pv for pv in live if claims(pv, pvc) and volume_matches(pv, pvc)]
    if prebound:
        return prebound[0]
    if pvc.spec.volume_name:
        return next((pv for pv in live if pv.metadata.name == pvc.spec.volume_name
                     and pv.spec.claim_ref is None and volume_matches(pv, pvc)), None)
    fits = [pv for pv in live if pv.spec.claim_ref is None and pv.phase == "Available"
            and volume_matches(pv, pvc)]
    return min(fits, key=lambda pv: (pv.size(), pv.metadata.name or ""), default=None)
