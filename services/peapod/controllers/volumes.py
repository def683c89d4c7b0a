"""The PersistentVolume controller: bind claims to volumes, release them, lift protection.

Kubernetes' ``persistentvolume-binder`` and ``pvc-protection`` /
``pv-protection`` controllers, for statically created volumes:

* a ``Pending`` claim is bound to the volume ``best_volume`` picks (one
  pre-bound to it by ``claimRef`` or named by its ``volumeName``, else the
  smallest ``Available`` one of the same class and volume mode with every
  access mode asked for, enough capacity and matching the claim's
  selector). As Kubernetes does, the volume is written first (``claimRef``,
  then phase ``Bound``), then the claim (``volumeName`` and the
  ``pv.kubernetes.io/bind-completed`` annotations, then phase ``Bound`` with
  the volume's access modes and capacity). Each write is a compare-and-set,
  so a pass on a stale view loses and runs again;
* no volume fits: the claim stays ``Pending`` with Kubernetes' event,
  ``FailedBinding`` "no persistent volumes available for this claim and no
  storage class is set", or, for a class, ``ProvisioningFailed``
  ``storageclass.storage.k8s.io "<class>" not found`` (peapod has no
  StorageClass kind, so nothing can provision it);
* a volume whose claim is gone is ``Released`` (policy ``Retain``: its data
  stays and it is not bound again until it is created anew) or, with policy
  ``Delete``, ``Failed`` with ``VolumeFailedDelete``: peapod deletes no data
  it did not provision;
* a bound claim whose volume is gone is ``Lost`` (``ClaimLost``);
* a claim being deleted loses ``kubernetes.io/pvc-protection`` once no pod
  that is not finished uses it; a volume being deleted loses
  ``kubernetes.io/pv-protection`` once it is not ``Bound``. The apiserver
  removes an object whose last finalizer goes.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from nats.js import JetStreamContext

from peapod.api import Pod, now_rfc3339
from peapod.api.storage import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    PV_PROTECTION,
    PVC_PROTECTION,
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
    best_volume,
    claim_ref_of,
    claims,
)
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import Informer, WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.queueing import QueuedController
from peapod.errors import Conflict, NotFound

log = structlog.get_logger("controllers.volumes")

PVS, PVCS = "persistentvolumes", "persistentvolumeclaims"
RETRY_SECONDS = 1.0
Watched = Pod | PersistentVolume | PersistentVolumeClaim
_MODELS: dict[str, type[Watched]] = {"pods": Pod, PVS: PersistentVolume,
                                     PVCS: PersistentVolumeClaim}
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
LOST = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


def _decode(key: str, data: bytes) -> Watched:
    return _MODELS[key.split(".", 1)[0]].model_validate(json.loads(data))


def claim_key(namespace: str | None, name: str) -> str:
    return s.kv_key(PVCS, namespace or "default", name)


def volume_key(name: str) -> str:
    return s.kv_key(PVS, None, name)


def uses_claim(pod: Pod, name: str) -> bool:
    """The pod mounts claim ``name`` and has not finished (Kubernetes' pvc-protection test)."""
    if pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
        return False
    return any(v.persistent_volume_claim and v.persistent_volume_claim.claim_name == name
               for v in pod.spec.volumes or [])


class VolumeController(QueuedController):
    name = "persistentvolume-binder"

    def __init__(self, *, js: JetStreamContext, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.informer: Informer[Watched] = Informer(
            js, bucket=s.KV_BUCKET, keys=("pods.>", f"{PVS}.>", f"{PVCS}.>"), decode=_decode,
            clock=clock)
        self.objects: dict[str, Any] = {}
        super().__init__(cache=self, clock=clock)  # type: ignore[arg-type]  # waits on us
        self.api = api
        self.events = events
        self.informer.add_handler(self._on_event)

    async def wait_synced(self) -> None:
        await self.informer.synced.wait()

    def of_kind(self, resource: str, namespace: str | None = None) -> list[Any]:
        prefix = s.kv_prefix(resource, namespace)
        return [obj for key, obj in self.objects.items() if key.startswith(prefix)]

    def initial_keys(self) -> list[str]:
        return [k for k in self.objects if not k.startswith("pods.")]

    # -- events -------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent[Watched]) -> None:
        obj = event.obj
        if event.type == "DELETED":
            self.objects.pop(event.key, None)
        else:
            obj.metadata.resource_version = str(event.revision)
            self.objects[event.key] = obj
        if isinstance(obj, Pod):
            for volume in obj.spec.volumes or []:
                if volume.persistent_volume_claim is not None:
                    self.add(claim_key(obj.metadata.namespace,
                                       volume.persistent_volume_claim.claim_name))
        elif isinstance(obj, PersistentVolumeClaim):
            self.add(event.key)
            for pv in self.of_kind(PVS):
                if claims(pv, obj) or pv.metadata.name == obj.spec.volume_name:
                    self.add(volume_key(pv.metadata.name or ""))
        else:
            self.add(event.key)
            for pvc in self.of_kind(PVCS):  # a new or freed volume may fit a waiting claim
                if pvc.phase != "Bound" or pvc.spec.volume_name == obj.metadata.name:
                    self.add(claim_key(pvc.metadata.namespace, pvc.metadata.name or ""))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Outcome:
        obj = self.objects.get(key)
        try:
            if isinstance(obj, PersistentVolumeClaim):
                await self._sync_claim(obj)
            elif isinstance(obj, PersistentVolume):
                await self._sync_volume(obj)
        except (Conflict, NotFound) as exc:  # a stale view: the informer brings the news
            log.info("volume_sync_conflict", key=key, error=exc.message)
            return RetryAfter(RETRY_SECONDS)
        return Done()

    async def _sync_claim(self, pvc: PersistentVolumeClaim) -> None:
        meta = pvc.metadata
        namespace, name = meta.namespace or "default", meta.name or ""
        if meta.deletion_timestamp:
            if PVC_PROTECTION in (meta.finalizers or []) and not any(
                    uses_claim(p, name) for p in self.of_kind("pods", namespace)):
                await self._unprotect(PVCS, pvc, PVC_PROTECTION)
            return
        volumes = self.of_kind(PVS)
        if pvc.spec.volume_name and pvc.phase != "Pending":
            pv = next((v for v in volumes if v.metadata.name == pvc.spec.volume_name), None)
            if pv is None and pvc.phase == "Bound":
                await self._claim_status(pvc, PersistentVolumeClaimStatus(phase="Lost"))
                await self.events.record(pvc.to_wire(), reason="ClaimLost", message=LOST,
                                         type="Warning")
            return
        pv = best_volume(pvc, volumes)
        if pv is None:
            await self._report_no_volume(pvc)
            return
        await self._bind(pv, pvc)

    async def _report_no_volume(self, pvc: PersistentVolumeClaim) -> None:
        if pvc.spec.volume_name:
            return  # Kubernetes waits, without an event, for the volume it names
        if pvc.storage_class():
            await self.events.record(pvc.to_wire(), reason="ProvisioningFailed", type="Warning",
                                     message=f'storageclass.storage.k8s.io '
                                             f'"{pvc.storage_class()}" not found')
        else:
            await self.events.record(pvc.to_wire(), reason="FailedBinding", message=NO_CLASS)

    async def _bind(self, pv: PersistentVolume, pvc: PersistentVolumeClaim) -> None:
        blog = log.bind(namespace=pvc.metadata.namespace, name=pvc.metadata.name,
                        uid=pvc.metadata.uid, volume=pv.metadata.name)
        if not claims(pv, pvc) or not (pv.spec.claim_ref and pv.spec.claim_ref.uid):
            bound = pv.model_copy(deep=True)
            bound.spec.claim_ref = claim_ref_of(pvc)
            pv = PersistentVolume.model_validate(await self.api.update(PVS, bound.to_wire()))
        if pv.phase != "Bound":
            pv = await self._volume_status(pv, "Bound")
        claim = pvc.model_copy(deep=True)
        claim.spec.volume_name = pv.metadata.name
        claim.metadata.annotations = {**(claim.metadata.annotations or {}),
                                      BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"}
        claim = PersistentVolumeClaim.model_validate(await self.api.update(PVCS, claim.to_wire()))
        await self._claim_status(claim, PersistentVolumeClaimStatus(
            phase="Bound", access_modes=pv.spec.access_modes, capacity=pv.spec.capacity))
        blog.info("claim_bound")

    async def _sync_volume(self, pv: PersistentVolume) -> None:
        meta = pv.metadata
        if meta.deletion_timestamp and PV_PROTECTION in (meta.finalizers or []) \
                and pv.phase != "Bound":
            await self._unprotect(PVS, pv, PV_PROTECTION)
            return
        ref = pv.spec.claim_ref
        if ref is None:
            if pv.phase in ("Pending", "Released", "Failed") and not meta.deletion_timestamp:
                await self._volume_status(pv, "Available")
            return
        pvc = self.objects.get(claim_key(ref.namespace, ref.name or ""))
        if pvc is not None and (not ref.uid or ref.uid == pvc.metadata.uid):
            if pvc.spec.volume_name == meta.name and pvc.phase == "Bound":
                if pv.phase != "Bound":
                    await self._volume_status(pv, "Bound")
            elif pv.phase == "Pending":
                await self._volume_status(pv, "Available")  # pre-bound: the claim binds it
            return
        if not ref.uid:  # pre-bound to a claim not created yet
            if pv.phase == "Pending":
                await self._volume_status(pv, "Available")
            return
        await self._reclaim(pv)

    async def _reclaim(self, pv: PersistentVolume) -> None:
        """The claim is gone: Released (Retain), or Failed (Delete of data peapod did not make)."""
        if pv.spec.persistent_volume_reclaim_policy == "Retain":
            if pv.phase != "Released":
                await self._volume_status(pv, "Released")
            return
        if pv.phase == "Failed":
            return
        message = (f'error getting deleter volume plugin for volume "{pv.metadata.name}": no '
                   "deletable volume plugin matched (peapod deletes only what it provisioned)")
        await self._volume_status(pv, "Failed", message=message)
        await self.events.record(pv.to_wire(), reason="VolumeFailedDelete", message=message,
                                 type="Warning")  # a cluster-scoped object's: in "default"

    # -- writes -------------------------------------------------------------------------

    async def _unprotect(self, resource: str, obj: PersistentVolume | PersistentVolumeClaim,
                         finalizer: str) -> None:
        await self.api.remove_finalizer(resource, obj, finalizer)
        log.info("protection_removed", kind=obj.kind, namespace=obj.metadata.namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid)

    async def _volume_status(self, pv: PersistentVolume, phase: str, *,
                             message: str | None = None) -> PersistentVolume:
        updated = pv.model_copy(deep=True)
        updated.status = PersistentVolumeStatus.model_validate(
            {"phase": phase, "message": message, "lastPhaseTransitionTime": now_rfc3339()})
        stored = await self.api.update(PVS, updated.to_wire(), status=True)
        log.info("volume_phase", name=pv.metadata.name, uid=pv.metadata.uid, phase=phase)
        return PersistentVolume.model_validate(stored)

    async def _claim_status(self, pvc: PersistentVolumeClaim,
                            status: PersistentVolumeClaimStatus) -> None:
        if pvc.status is not None and pvc.status.to_wire() == status.to_wire():
            return
        updated = pvc.model_copy(deep=True)
        updated.status = status
        await self.api.update(PVCS, updated.to_wire(), status=True)
