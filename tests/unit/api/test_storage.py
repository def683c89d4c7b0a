"""PersistentVolume and PersistentVolumeClaim: defaults, validation wording, the binder's choice."""

from __future__ import annotations

from typing import Any

import pytest

from peapod.api import parse_object
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim, best_volume
from peapod.errors import Invalid


def pv(name: str = "pv", size: str = "10Gi", **spec: Any) -> dict[str, Any]:
    body = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/mnt/data"}, **spec}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {k: v for k, v in body.items() if v is not None}}


def pvc(name: str = "claim", size: str = "3Gi", **spec: Any) -> dict[str, Any]:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
            **spec}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def problems(doc: dict[str, Any]) -> str:
    with pytest.raises(Invalid) as exc:
        parse_object(doc)
    return exc.value.message


def test_defaults_are_kubernetes():
    volume = parse_object(pv())
    assert isinstance(volume, PersistentVolume)
    assert volume.spec.persistent_volume_reclaim_policy == "Retain"
    assert volume.spec.volume_mode == "Filesystem"
    assert volume.phase == "Pending"
    claim = parse_object(pvc())
    assert isinstance(claim, PersistentVolumeClaim)
    assert (claim.spec.volume_mode, claim.phase, claim.storage_class()) == ("Filesystem",
                                                                             "Pending", "")


@pytest.mark.parametrize(("doc", "expected"), [
    (pv(accessModes=None), "spec.accessModes: Required value"),
    (pv(accessModes=["ReadWriteOncePod", "ReadOnlyMany"]),
     "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"),
    (pv(capacity=None), "spec.capacity: Required value"),
    (pv(capacity={"storage": "1Gi", "cpu": "1"}),
     'spec.capacity: Unsupported value: "cpu": supported values: "storage"'),
    (pv(persistentVolumeReclaimPolicy="Recycle"),
     'spec.persistentVolumeReclaimPolicy: Unsupported value: "Recycle"'),
    (pv(persistentVolumeReclaimPolicy="Keep"),
     'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
     '"Delete", "Recycle", "Retain"'),
    (pv(volumeMode="Block"), 'spec.volumeMode: Unsupported value: "Block"'),
    (pv(hostPath=None), "spec: Required value: must specify a volume type"),
    (pv(local={"path": "/disk"}, nodeAffinity={"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["a"]}]}]}}),
     "spec.local: Forbidden: may not specify more than 1 volume type"),
    (pv(hostPath={"path": "/a/../b"}), "spec.hostPath.path: Invalid value: \"/a/../b\": "
     "must not contain '..'"),
    (pv(hostPath={"path": "relative"}), "must be an absolute path"),
    (pv(storageClassName="Bad_Class"), 'spec.storageClassName: Invalid value: "Bad_Class"'),
    (pv(nfs={"server": "x", "path": "/"}), "spec.nfs: unknown field"),
    (pv(mountOptions=["ro"]), "spec.mountOptions: unknown field"),
    (pv(nodeAffinity={}), "spec.nodeAffinity.required: Required value: must specify required "
     "node constraints"),
    (pvc(accessModes=None), "spec.accessModes: Required value: at least 1 access mode is required"),
    (pvc(resources={"requests": {}}), "spec.resources[storage]: Required value"),
    (pvc(size="0"), 'spec.resources[storage]: Invalid value: "0": must be greater than zero'),
    (pvc(volumeMode="Block"), 'spec.volumeMode: Unsupported value: "Block": supported values: '
     '"Filesystem"'),
    (pvc(dataSource={"kind": "PersistentVolumeClaim", "name": "x"}),
     "spec.dataSource: unknown field"),
])
def test_refused_in_kubernetes_words(doc, expected):
    assert expected in problems(doc)


def test_local_volume_needs_node_affinity():
    local = pv(hostPath=None, local={"path": "/mnt/disk"})
    assert "spec.nodeAffinity: Required value: Local volume requires node affinity" in \
        problems(local)


def test_a_pod_may_mount_a_claim():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
                    "containers": [{"name": "c", "image": "busybox"}]}}
    parse_object(pod)
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = ""
    assert "spec.volumes[0].persistentVolumeClaim.claimName: Required value" in problems(pod)


def _available(doc: dict[str, Any]) -> PersistentVolume:
    return PersistentVolume.model_validate({**doc, "status": {"phase": "Available"}})


def test_smallest_fit_of_the_same_class_modes_and_selector():
    volumes = [_available(pv("big", "100Gi")), _available(pv("small", "5Gi")),
               _available(pv("tiny", "1Gi")),
               _available(pv("classy", "4Gi", storageClassName="manual")),
               _available(pv("shared", "4Gi", accessModes=["ReadOnlyMany"]))]
    claim = PersistentVolumeClaim.model_validate(pvc())
    assert best_volume(claim, volumes).metadata.name == "small"
    classed = PersistentVolumeClaim.model_validate(pvc(storageClassName="manual"))
    assert best_volume(classed, volumes).metadata.name == "classy"
    selective = PersistentVolumeClaim.model_validate(pvc(selector={"matchLabels": {"a": "b"}}))
    assert best_volume(selective, volumes) is None
    labelled = {**pv("labelled", "50Gi"), "status": {"phase": "Available"}}
    labelled["metadata"]["labels"] = {"a": "b"}
    assert best_volume(selective, [*volumes, PersistentVolume.model_validate(labelled)]) \
        .metadata.name == "labelled"
    huge = PersistentVolumeClaim.model_validate(pvc(size="1Ti"))
    assert best_volume(huge, volumes) is None


def test_a_volume_bound_elsewhere_or_named_is_respected():
    taken = pv("taken", "5Gi", claimRef={"namespace": "default", "name": "other", "uid": "u"})
    volumes = [PersistentVolume.model_validate({**taken, "status": {"phase": "Bound"}}),
               _available(pv("free", "50Gi"))]
    claim = PersistentVolumeClaim.model_validate(pvc())
    assert best_volume(claim, volumes).metadata.name == "free"
    named = PersistentVolumeClaim.model_validate(pvc(volumeName="taken"))
    assert best_volume(named, volumes) is None
    prebound = pv("mine", "50Gi", claimRef={"namespace": "default", "name": "claim"})
    assert best_volume(claim, [*volumes, PersistentVolume.model_validate(prebound)]) \
        .metadata.name == "mine"
