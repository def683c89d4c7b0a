"""``get`` and ``describe`` of PersistentVolumes and PersistentVolumeClaims, as kubectl prints them.

The columns are kubectl's ``printPersistentVolume`` (NAME CAPACITY ACCESS
MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON
AGE, ``-o wide`` adds VOLUMEMODE) and ``printPersistentVolumeClaim`` (NAME
STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE,
and VOLUMEMODE); peapod has no VolumeAttributesClass, so that column is
``<unset>``, as kubectl prints a claim without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peapod.api import Event, Pod
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.cli.describe import NONE, _events, _Writer
from peapod.cli.printers import _table, age, format_labels, namespaced_table

PV_COLUMNS = ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
              "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
PVC_COLUMNS = ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
               "VOLUMEATTRIBUTESCLASS", "AGE"]
_SHORT_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))
UNSET = "<unset>"


def access_modes(modes: list[str] | None) -> str:
    """kubectl's GetAccessModesAsString: short names in a fixed order."""
    return ",".join(short for mode, short in _SHORT_MODES if mode in (modes or []))


def _status(phase: str, obj: PersistentVolume | PersistentVolumeClaim) -> str:
    return "Terminating" if obj.metadata.deletion_timestamp else phase


def _storage(amounts: dict[str, str | int] | None) -> str:
    return str((amounts or {}).get("storage", ""))


def claim_of(pv: PersistentVolume) -> str:
    ref = pv.spec.claim_ref
    return f"{ref.namespace or ''}/{ref.name or ''}" if ref else ""


def pv_table(pvs: Sequence[PersistentVolume], *, now: datetime, wide: bool = False,
             no_headers: bool = False, show_labels: bool = False) -> str:
    header = [*PV_COLUMNS, *(["VOLUMEMODE"] if wide else [])]
    rows = []
    for pv in pvs:
        row = [pv.metadata.name or "", _storage(pv.spec.capacity), access_modes(pv.spec.access_modes),
               pv.spec.persistent_volume_reclaim_policy, _status(pv.phase, pv), claim_of(pv),
               pv.storage_class(), UNSET, (pv.status.reason if pv.status else None) or "",
               age(pv.metadata.creation_timestamp, now)]
        rows.append([*row, *([pv.spec.volume_mode] if wide else [])])
    if show_labels:
        header = [*header, "LABELS"]
        rows = [[*row, format_labels(pv.metadata.labels)] for pv, row in zip(pvs, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


def pvc_table(pvcs: Sequence[PersistentVolumeClaim], *, now: datetime, wide: bool = False,
              all_namespaces: bool = False, no_headers: bool = False,
              show_labels: bool = False) -> str:
    header = [*PVC_COLUMNS, *(["VOLUMEMODE"] if wide else [])]
    rows = []
    for pvc in pvcs:
        bound = bool(pvc.spec.volume_name)
        status = pvc.status
        row = [pvc.metadata.name or "", _status(pvc.phase, pvc), pvc.spec.volume_name or "",
               _storage(status.capacity if status else None) if bound else "",
               access_modes(status.access_modes if status else None) if bound else "",
               pvc.storage_class(), UNSET, age(pvc.metadata.creation_timestamp, now)]
        rows.append([*row, *([pvc.spec.volume_mode] if wide else [])])
    return namespaced_table(header, rows, pvcs, all_namespaces=all_namespaces,
                            show_labels=show_labels, no_headers=no_headers)


def storage_table(kind: str, objs: Sequence[Any], *, now: datetime, wide: bool,
                  all_namespaces: bool, no_headers: bool, show_labels: bool) -> str:
    if kind == "persistentvolumes":
        return pv_table([o for o in objs if isinstance(o, PersistentVolume)], now=now, wide=wide,
                        no_headers=no_headers, show_labels=show_labels)
    return pvc_table([o for o in objs if isinstance(o, PersistentVolumeClaim)], now=now,
                     wide=wide, all_namespaces=all_namespaces, no_headers=no_headers,
                     show_labels=show_labels)


def _common(w: _Writer, obj: PersistentVolume | PersistentVolumeClaim) -> None:
    meta = obj.metadata
    w.line(0, "Name:", meta.name or "")
    if isinstance(obj, PersistentVolumeClaim):
        w.line(0, "Namespace:", meta.namespace or "default")
    w.line(0, "StorageClass:", obj.storage_class())
    if isinstance(obj, PersistentVolumeClaim):
        w.line(0, "Status:", _status(obj.phase, obj))
        w.line(0, "Volume:", obj.spec.volume_name or "")
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    w.line(0, "Finalizers:", "[" + " ".join(meta.finalizers or []) + "]")


def describe_pv(pv: PersistentVolume, events: Sequence[Event], *, now: datetime) -> str:
    """kubectl's ``describePersistentVolume``."""
    w = _Writer()
    _common(w, pv)
    w.line(0, "Status:", _status(pv.phase, pv))
    w.line(0, "Claim:", claim_of(pv))
    w.line(0, "Reclaim Policy:", pv.spec.persistent_volume_reclaim_policy)
    w.line(0, "Access Modes:", access_modes(pv.spec.access_modes))
    w.line(0, "VolumeMode:", pv.spec.volume_mode)
    w.line(0, "Capacity:", _storage(pv.spec.capacity))
    affinity = pv.spec.node_affinity.required if pv.spec.node_affinity else None
    if affinity is None:
        w.line(0, "Node Affinity:", NONE)
    else:
        w.line(0, "Node Affinity:")
        w.line(1, "Required Terms:")
        for term in affinity.node_selector_terms:
            w.line(2, "Term 0:" if term is affinity.node_selector_terms[0] else "Term:",
                   ", ".join(f"{r.key} {r.operator.lower()} [{', '.join(r.values or [])}]"
                             for r in [*(term.match_expressions or []),
                                       *(term.match_fields or [])]))
    w.line(0, "Message:", (pv.status.message if pv.status else None) or "")
    w.line(0, "Source:")
    if pv.spec.host_path is not None:
        w.line(1, "Type:", "HostPath (bare host directory volume)")
        w.line(1, "Path:", pv.spec.host_path.path)
        w.line(1, "HostPathType:", pv.spec.host_path.type or "")
    elif pv.spec.local is not None:
        w.line(1, "Type:", "LocalVolume (a persistent volume backed by local storage on a node)")
        w.line(1, "Path:", pv.spec.local.path)
    _events(w, events, now)
    return w.text()


def describe_pvc(pvc: PersistentVolumeClaim, pods: Sequence[Pod], events: Sequence[Event], *,
                 now: datetime) -> str:
    """kubectl's ``describePersistentVolumeClaim``, with the pods that use it (Used By)."""
    w = _Writer()
    _common(w, pvc)
    status = pvc.status
    bound = bool(pvc.spec.volume_name)
    w.line(0, "Capacity:", _storage(status.capacity if status else None) if bound else "")
    w.line(0, "Access Modes:", access_modes(status.access_modes if status else None)
           if bound else "")
    w.line(0, "VolumeMode:", pvc.spec.volume_mode)
    users = [p.metadata.name or "" for p in pods if any(
        v.persistent_volume_claim and v.persistent_volume_claim.claim_name == pvc.metadata.name
        for v in p.spec.volumes or [])]
    w.line(0, "Used By:", users[0] if users else NONE)
    for name in users[1:]:
        w.line(0, "", name)
    _events(w, events, now)
    return w.text()
