"""One daemon per node that should run it: the DaemonSet rules without a cluster."""

from __future__ import annotations

from peapod.api import Node, Pod
from peapod.api.apps import DaemonSet
from peapod.api.scheduling import Affinity, Toleration
from peapod.controllers.daemons import (
    REVISION_HASH,
    bind_to_node,
    plan_daemonset,
    should_continue_running,
    should_run,
    target_node,
)


def daemonset(*, selector: dict | None = None, max_unavailable: object = 1,
              strategy: str = "RollingUpdate") -> DaemonSet:
    update: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        update["rollingUpdate"] = {"maxUnavailable": max_unavailable}
    return DaemonSet.model_validate({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "updateStrategy": update,
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "busybox"}],
                                       **({"nodeSelector": selector} if selector else {})}}}})


def node(name: str, labels: dict | None = None, taints: list | None = None) -> Node:
    return Node.model_validate({"metadata": {"name": name, "labels": labels or {}},
                                "spec": {"taints": taints or []}})


def pod(name: str, node_name: str, *, hash_: str = "new", ready: bool = True,
        deleting: bool = False, created: str = "2026-01-01T00:00:00Z") -> Pod:
    meta: dict = {"name": name, "namespace": "default", "uid": f"u-{name}",
                  "labels": {"app": "agent", REVISION_HASH: hash_}, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = created
    status: dict = {"phase": "Running"}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return Pod.model_validate({"metadata": meta, "status": status, "spec": {
        "nodeName": node_name, "containers": [{"name": "a", "image": "busybox"}]}})


def test_node_selector_and_taints_decide_and_cordon_or_unreachable_do_not():
    ds = daemonset(selector={"role": "edge"})
    assert should_run(ds, node("a", {"role": "edge"}))
    assert not should_run(ds, node("b"))
    assert should_run(daemonset(), node("c", taints=[
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]))
    assert not should_run(daemonset(), node("d", taints=[{"key": "gpu", "effect": "NoSchedule"}]))
    assert should_run(daemonset(), node("e", taints=[{"key": "gpu",
                                                      "effect": "PreferNoSchedule"}]))


def test_the_templates_tolerations_and_node_affinity_decide_too():
    ds = daemonset()
    spec = ds.spec.template.spec
    spec.tolerations = [Toleration(key="gpu", operator="Exists", effect="NoSchedule")]
    assert should_run(ds, node("d", taints=[{"key": "gpu", "effect": "NoSchedule"}]))
    assert not should_run(ds, node("d", taints=[{"key": "gpu", "effect": "NoExecute"}]))
    spec.affinity = Affinity.model_validate({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "NotIn",
                                   "values": ["arm"]}]}]}}})
    assert should_run(ds, node("a", {"kubernetes.io/arch": "arm64"}))
    assert not should_run(ds, node("b", {"kubernetes.io/arch": "arm"}))


def test_missing_pods_are_created_extras_and_misplaced_ones_deleted():
    ds = daemonset(selector={"role": "edge"})
    nodes = [node("a", {"role": "edge"}), node("b", {"role": "edge"}), node("c")]
    pods = [pod("keep", "a", created="2026-01-01T00:00:00Z"),
            pod("extra", "a", created="2026-01-02T00:00:00Z"), pod("wrong", "c"),
            pod("gone-node", "z")]
    plan = plan_daemonset(ds, nodes, pods, hash_="new")
    assert plan.create_on == ["b"]
    assert sorted(p.metadata.name for p in plan.delete) == ["extra", "gone-node", "wrong"]
    assert plan.status.to_wire() == {
        "currentNumberScheduled": 1, "numberMisscheduled": 2, "desiredNumberScheduled": 2,
        "numberReady": 1, "observedGeneration": 2, "updatedNumberScheduled": 1,
        "numberAvailable": 1, "numberUnavailable": 1}


def test_a_no_schedule_taint_keeps_the_running_daemon_and_no_execute_evicts_it():
    """Kubernetes' NodeShouldRunDaemonPod: shouldRun false, shouldContinueRunning true."""
    ds = daemonset()
    tainted = node("a", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    assert not should_run(ds, tainted) and should_continue_running(ds, tainted)
    plan = plan_daemonset(ds, [tainted], [pod("runs", "a"), pod("extra", "a",
                                                                created="2026-01-02T00:00:00Z")],
                          hash_="new")
    assert [p.metadata.name for p in plan.delete] == ["extra"] and plan.create_on == []
    assert (plan.status.desired_number_scheduled, plan.status.number_misscheduled) == (0, 1)
    assert plan_daemonset(ds, [tainted], [], hash_="new").create_on == []  # none made there
    evicting = node("a", taints=[{"key": "k", "effect": "NoExecute"}])
    assert not should_continue_running(ds, evicting)
    assert [p.metadata.name for p in plan_daemonset(ds, [evicting], [pod("runs", "a")],
                                                    hash_="new").delete] == ["runs"]


def test_a_node_whose_daemon_is_terminating_waits_before_a_new_one():
    plan = plan_daemonset(daemonset(), [node("a")], [pod("old", "a", deleting=True)], hash_="new")
    assert plan.create_on == [] and plan.delete == []


def test_rolling_update_replaces_within_max_unavailable_not_ready_first():
    nodes = [node(n) for n in "abcd"]
    pods = [pod("pa", "a", hash_="old"), pod("pb", "b", hash_="old"),
            pod("pc", "c", hash_="old", ready=False), pod("pd", "d", hash_="new")]
    plan = plan_daemonset(daemonset(max_unavailable=2), nodes, pods, hash_="new")
    assert sorted(p.metadata.name for p in plan.delete) == ["pa", "pc"]  # pc was down already
    plan = plan_daemonset(daemonset(max_unavailable="25%"), nodes, pods, hash_="new")
    assert [p.metadata.name for p in plan.delete] == ["pc"]  # 25% of 4 is 1, spent by pc
    plan = plan_daemonset(daemonset(strategy="OnDelete"), nodes, pods, hash_="new")
    assert plan.delete == []


def test_a_daemon_pod_is_pinned_by_match_fields_and_the_scheduler_binds_it():
    spec = daemonset().spec.template.spec.model_copy(deep=True)
    spec.affinity = Affinity.model_validate({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["old"]}]},
            {"matchExpressions": [{"key": "role", "operator": "In", "values": ["edge"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
            "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}})
    spec.tolerations = [Toleration(key="node.kubernetes.io/unreachable", operator="Exists",
                                   effect="NoExecute", toleration_seconds=5)]
    bind_to_node(spec, "a")
    assert spec.node_name is None  # the scheduler binds it
    wire = spec.to_wire()["affinity"]["nodeAffinity"]
    assert wire["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}
    assert len(wire["preferredDuringSchedulingIgnoredDuringExecution"]) == 1  # kept
    tolerations = {(t.key, t.effect): t.toleration_seconds for t in spec.tolerations or []}
    assert tolerations == {("node.kubernetes.io/not-ready", "NoExecute"): None,
                           ("node.kubernetes.io/unreachable", "NoExecute"): None,
                           ("node.kubernetes.io/disk-pressure", "NoSchedule"): None,
                           ("node.kubernetes.io/memory-pressure", "NoSchedule"): None,
                           ("node.kubernetes.io/pid-pressure", "NoSchedule"): None,
                           ("node.kubernetes.io/unschedulable", "NoSchedule"): None}
    waiting = pod("agent-x", "")
    waiting.spec = spec
    assert target_node(waiting) == "a"


def test_an_unbound_daemon_pod_counts_for_its_target_node():
    waiting = pod("agent-x", "")
    bind_to_node(waiting.spec, "a")
    plan = plan_daemonset(daemonset(), [node("a")], [waiting], hash_="new")
    assert plan.create_on == [] and plan.delete == []
    assert plan.status.current_number_scheduled == 1
