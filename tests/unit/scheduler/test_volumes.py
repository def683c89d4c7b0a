"""The VolumeBinding plugin: claims that must exist and be bound, volumes that pin a node."""

from __future__ import annotations

from peapod.api import Pod
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.bus import subjects as s
from peapod.scheduler.filters import feasible_nodes
from peapod.scheduler.volumes import VolumeView
from tests.unit.scheduler.test_filters import node


def claiming_pod(*claims: str) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i:1"}],
                 "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                             for i, c in enumerate(claims)]}})


def view(*, bound_to: str | None = "local-a", deleting: bool = False) -> VolumeView:
    claim = PersistentVolumeClaim.model_validate({
        "metadata": {"name": "data", "namespace": "default",
                     **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 **({"volumeName": bound_to} if bound_to else {})},
        "status": {"phase": "Bound" if bound_to else "Pending"}})
    volume = PersistentVolume.model_validate({
        "metadata": {"name": "local-a"},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                 "local": {"path": "/mnt/disk"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}]}}},
        "status": {"phase": "Bound"}})
    return VolumeView(claims={s.kv_key("persistentvolumeclaims", "default", "data"): claim},
                      volumes={s.kv_key("persistentvolumes", None, "local-a"): volume})


NODES = [node("a", labels={"kubernetes.io/hostname": "a"}),
         node("b", labels={"kubernetes.io/hostname": "b"})]


def test_a_local_volume_pins_its_pod_to_its_node():
    result = feasible_nodes(claiming_pod("data"), NODES, [], volumes=view())
    assert [n.metadata.name for n in result.nodes] == ["a"]
    only_b = feasible_nodes(claiming_pod("data"), NODES[1:], [], volumes=view())
    assert only_b.message() == ("0/1 nodes are available: 1 node(s) had volume node affinity "
                                "conflict.")


def test_missing_unbound_and_deleted_claims_keep_the_pod_pending():
    missing = feasible_nodes(claiming_pod("data", "nope"), NODES, [], volumes=view())
    assert missing.message() == ('0/2 nodes are available: persistentvolumeclaim "nope" not '
                                 "found.")
    unbound = feasible_nodes(claiming_pod("data"), NODES, [], volumes=view(bound_to=None))
    assert unbound.message() == ("0/2 nodes are available: pod has unbound immediate "
                                 "PersistentVolumeClaims.")
    deleting = feasible_nodes(claiming_pod("data"), NODES, [], volumes=view(deleting=True))
    assert deleting.message() == ('0/2 nodes are available: persistentvolumeclaim "data" is '
                                  "being deleted.")


def test_a_pod_without_claims_is_not_affected():
    result = feasible_nodes(claiming_pod(), NODES, [], volumes=VolumeView())
    assert len(result.nodes) == 2
