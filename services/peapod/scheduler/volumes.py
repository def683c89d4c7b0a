"""Kubernetes' VolumeBinding plugin, for claims bound in advance (``Immediate`` binding).

PreFilter: every claim the pod mounts must exist, not be being deleted, and
be bound, or the pod stays Pending with Kubernetes' words, for every node at
once: ``0/3 nodes are available: persistentvolumeclaim "x" not found.``,
``… persistentvolumeclaim "x" is being deleted.``, ``… pod has unbound
immediate PersistentVolumeClaims.`` (a claim's binding, by the controller
manager, wakes the scheduler like any change).

Filter: a node must satisfy the ``nodeAffinity`` of every bound volume (a
``local`` volume lives on one node), else ``node(s) had volume node
affinity conflict``. The filter runs where Kubernetes' default profile
runs VolumeBinding: after NodeResourcesFit, before PodTopologySpread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peapod.api import Node, Pod
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.bus import subjects as s

VOLUME_CONFLICT = "node(s) had volume node affinity conflict"
UNBOUND = "pod has unbound immediate PersistentVolumeClaims"


@dataclass
class VolumeView:
    """The claims and volumes the scheduler's cache holds, by KV key."""

    claims: dict[str, PersistentVolumeClaim] = field(default_factory=dict)
    volumes: dict[str, PersistentVolume] = field(default_factory=dict)

    def resolve(self, pod: Pod) -> str | list[PersistentVolume]:
        """The volumes bound to the pod's claims, or why the pod cannot be placed yet."""
        namespace = pod.metadata.namespace or "default"
        bound: list[PersistentVolume] = []
        unbound = False
        for volume in pod.spec.volumes or []:
            source = volume.persistent_volume_claim
            if source is None:
                continue
            name = source.claim_name
            claim = self.claims.get(s.kv_key("persistentvolumeclaims", namespace, name))
            if claim is None:
                return f'persistentvolumeclaim "{name}" not found'
            if claim.metadata.deletion_timestamp:
                return f'persistentvolumeclaim "{name}" is being deleted'
            pv = self.volumes.get(s.kv_key("persistentvolumes", None, claim.spec.volume_name)) \
                if claim.spec.volume_name else None
            if claim.phase != "Bound" or pv is None:
                unbound = True
            else:
                bound.append(pv)
        return UNBOUND if unbound else bound


def volume_affinity(volumes: list[PersistentVolume], node: Node) -> str | None:
    """Kubernetes' VolumeBinding filter for bound volumes: each one's node affinity holds."""
    return None if all(pv.fits_node(node) for pv in volumes) else VOLUME_CONFLICT
