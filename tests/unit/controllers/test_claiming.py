"""What a ReplicaSet owns, adopts, releases and removes first: Kubernetes' rules, without a cluster."""

from __future__ import annotations

from peapod.api import Pod
from peapod.api.apps import LabelSelector, ReplicaSet
from peapod.controllers.claiming import (
    claim_pods,
    controller_reference,
    new_pod,
    pods_to_delete,
    replicaset_status,
)

RS_UID = "rs-uid"


def pod(name: str, *, labels: dict | None = None, owner: str | None = None, node: str | None = None,
        phase: str = "Pending", ready: bool = False, restarts: int = 0,
        created: str = "2026-01-01T00:00:00Z", deleting: bool = False) -> Pod:
    meta: dict = {"name": name, "namespace": "default", "labels": labels or {"app": "web"},
                  "creationTimestamp": created, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [controller_reference("ReplicaSet", "web", owner).to_wire()]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return Pod.model_validate({"metadata": meta, "status": status, "spec": {
        "containers": [{"name": "c", "image": "busybox"}], **({"nodeName": node} if node else {})}})


SELECTOR = LabelSelector(match_labels={"app": "web"})


def test_owned_pods_count_orphans_matching_are_adopted_others_left_alone():
    mine, orphan = pod("mine", owner=RS_UID), pod("orphan")
    theirs, unrelated = pod("theirs", owner="other"), pod("db", labels={"app": "db"})
    claim = claim_pods(RS_UID, SELECTOR, [mine, orphan, theirs, unrelated], owner_deleting=False)
    assert [p.metadata.name for p in claim.owned] == ["mine", "orphan"]
    assert [p.metadata.name for p in claim.adopt] == ["orphan"]
    assert claim.release == []


def test_an_owned_pod_whose_labels_moved_away_is_released_and_a_deleting_owner_adopts_nothing():
    moved = pod("moved", labels={"app": "other"}, owner=RS_UID)
    claim = claim_pods(RS_UID, SELECTOR, [moved, pod("orphan")], owner_deleting=True)
    assert [p.metadata.name for p in claim.release] == ["moved"]
    assert claim.adopt == [] and claim.owned == []


def test_surplus_goes_unscheduled_first_then_pending_not_ready_restarted_newest():
    pods = [pod("running-ready", node="a", phase="Running", ready=True),
            pod("running", node="a", phase="Running"),
            pod("pending-bound", node="a"),
            pod("unbound"),
            pod("restarted", node="a", phase="Running", restarts=5),
            pod("newer", node="a", phase="Running", created="2026-02-01T00:00:00Z")]
    order = [p.metadata.name for p in pods_to_delete(pods, len(pods))]
    assert order == ["unbound", "pending-bound", "restarted", "newer", "running", "running-ready"]
    assert [p.metadata.name for p in pods_to_delete(pods, 2)] == ["unbound", "pending-bound"]


def test_a_new_pod_is_the_template_with_a_generated_name_and_a_controller_reference():
    rs = ReplicaSet.model_validate({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "web", "namespace": "prod", "uid": RS_UID, "generation": 3}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    made = new_pod(rs.spec.template, namespace="prod", prefix="web-",
                   owner=controller_reference("ReplicaSet", "web", RS_UID)).to_wire()
    assert made["metadata"] == {"generateName": "web-", "namespace": "prod",
                                "labels": {"app": "web"}, "annotations": {"a": "b"},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                     "name": "web", "uid": RS_UID,
                                                     "controller": True,
                                                     "blockOwnerDeletion": True}]}
    status = replicaset_status(rs, [pod("x", phase="Running", ready=True), pod("y")],
                               failure="quota")
    assert status.to_wire() == {
        "replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
        "observedGeneration": 3, "conditions": [{"type": "ReplicaFailure", "status": "True",
                                                 "reason": "FailedCreate", "message": "quota"}]}
    assert replicaset_status(rs, []).conditions is None
