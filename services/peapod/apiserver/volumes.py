"""PersistentVolumes and PersistentVolumeClaims in the store, and a node's read of them.

Both kinds use the generic API of ``workloads.py`` (create, apply, get,
list, update, status, delete); what Kubernetes' strategies and admission add
is here:

* on creation the phase is ``Pending`` and the protection finalizer is added
  (``kubernetes.io/pv-protection``, ``kubernetes.io/pvc-protection``, as
  Kubernetes' StorageObjectInUseProtection admission does): deleting a claim
  that a pod uses, or a volume that is bound, only marks it; the controller
  manager removes the finalizer once nothing uses it;
* a claim's spec is immutable after creation but for ``volumeName`` being set
  (by the binder); a volume's source and ``nodeAffinity`` are immutable. A
  write that leaves out ``volumeName`` or ``claimRef`` (or the binder's
  ``pv.kubernetes.io/…`` annotations) keeps them, so applying the manifest
  again does not undo a binding;
* ``peapod.api.v1.node.<node>.persistentvolume`` answers a kubelet with the
  claim and its bound volume, only for a claim that a pod bound to that node
  mounts (Kubernetes' Node authorizer).
"""

from __future__ import annotations

from typing import Any

import structlog
from nats.aio.msg import Msg

from peapod.api import Pod
from peapod.api.storage import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    PV_PROTECTION,
    PVC_PROTECTION,
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
)
from peapod.apiserver.namespaces import Namespaces
from peapod.apiserver.store import Store
from peapod.apiserver.workloads import KindRules, Route, WorkloadApi
from peapod.bus import subjects as s
from peapod.errors import Forbidden, Invalid, invalid

log = structlog.get_logger("apiserver.volumes")


def _with_finalizer(finalizers: list[str] | None, finalizer: str) -> list[str]:
    return [*(finalizers or []), *([] if finalizer in (finalizers or []) else [finalizer])]


class VolumeRules(KindRules):
    def admit_new(self, obj: Any, what: str) -> None:
        obj.metadata.finalizers = _with_finalizer(obj.metadata.finalizers, PV_PROTECTION)
        obj.status = PersistentVolumeStatus(phase="Pending")

    def check_update(self, stored: Any, incoming: Any, key: str) -> None:
        old, new = stored.spec, incoming.spec
        if new.claim_ref is None:
            new.claim_ref = old.claim_ref
        name = stored.metadata.name
        for field, path in (("host_path", "persistentvolumesource"),
                            ("local", "persistentvolumesource"), ("node_affinity", "nodeAffinity")):
            if _wire(getattr(old, field)) != _wire(getattr(new, field)):
                raise invalid("PersistentVolume", name, [
                    f"spec.{path}: Forbidden: spec.{path} is immutable after creation"])


class ClaimRules(KindRules):
    def admit_new(self, obj: Any, what: str) -> None:
        obj.metadata.finalizers = _with_finalizer(obj.metadata.finalizers, PVC_PROTECTION)
        obj.status = PersistentVolumeClaimStatus(phase="Pending")

    def check_update(self, stored: Any, incoming: Any, key: str) -> None:
        kept = {k: v for k, v in (stored.metadata.annotations or {}).items()
                if k in (BIND_COMPLETED, BOUND_BY_CONTROLLER)}
        if kept:  # the binder's, which a manifest does not carry
            incoming.metadata.annotations = {**kept, **(incoming.metadata.annotations or {})}
        old, new = stored.spec, incoming.spec
        new.volume_name = new.volume_name or old.volume_name
        if not old.volume_name:  # the binder sets it once
            old = old.model_copy(update={"volume_name": new.volume_name})
        if old.to_wire() != new.to_wire():
            raise invalid("PersistentVolumeClaim", stored.metadata.name, [
                "spec: Forbidden: spec is immutable after creation except resources.requests "
                "and volumeAttributesClassName for bound claims (peapod cannot expand volumes)"])


def _wire(value: Any) -> Any:
    return value.to_wire() if value is not None else None


def volume_apis(store: Store, namespaces: Namespaces) -> dict[str, WorkloadApi[Any]]:
    return {
        "persistentvolumes": WorkloadApi(store, namespaces, resource="persistentvolumes",
                                         model=PersistentVolume, group="", rules=VolumeRules(),
                                         namespaced=False),
        "persistentvolumeclaims": WorkloadApi(store, namespaces,
                                              resource="persistentvolumeclaims",
                                              model=PersistentVolumeClaim, group="",
                                              rules=ClaimRules()),
    }


def claim_names(pod: Pod) -> set[str]:
    """The claims the pod's volumes name."""
    return {v.persistent_volume_claim.claim_name for v in pod.spec.volumes or []
            if v.persistent_volume_claim is not None}


class NodeVolumes:
    """A kubelet's read of the claims its pods mount."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> dict[str, Route]:
        return {f"{s.API_PREFIX}.node.*.persistentvolume": self.node_get}

    async def node_get(self, payload: dict[str, Any], msg: Msg) -> Any:
        """``{"claim": …, "volume": … or None}`` for a claim a pod on the asking node mounts."""
        node = s.node_of_api(msg.subject)
        namespace, name = payload.get("namespace"), payload.get("claimName")
        if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
            raise Invalid("request fields 'namespace' and 'claimName' must be non-empty strings")
        pods = [Pod.model_validate(i.value) for i in
                await self.store.list(s.kv_prefix("pods", namespace))]
        if not any(p.spec.node_name == node and name in claim_names(p) for p in pods):
            log.warning("node_read_refused", node=node, resource="persistentvolumeclaims",
                        namespace=namespace, name=name)
            raise Forbidden(
                f'persistentvolumeclaims "{name}" is forbidden: User "system:node:{node}" cannot '
                f'get resource "persistentvolumeclaims" in API group "" in the namespace '
                f"\"{namespace}\": no relationship found between node '{node}' and this object")
        claim = (await self.store.get(s.kv_key("persistentvolumeclaims", namespace, name),
                                      what=f'persistentvolumeclaims "{name}"')).value
        volume_name = (claim.get("spec") or {}).get("volumeName")
        volume = None
        if volume_name and (claim.get("status") or {}).get("phase") == "Bound":
            volume = (await self.store.get(s.kv_key("persistentvolumes", None, volume_name),
                                           what=f'persistentvolumes "{volume_name}"')).value
        return {"claim": claim, "volume": volume}
