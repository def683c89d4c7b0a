"""Scheduling decisions, from constructed objects (no bus needed)."""

from __future__ import annotations

from peapod.api import Node, Pod
from peapod.scheduler.filters import feasible_nodes, pod_requests
from peapod.scheduler.scores import pick_node


def node(name: str, *, cpu: str = "2", memory: str = "2Gi", ready: bool = True,
         labels: dict | None = None, unschedulable: bool = False, pods: str = "110") -> Node:
    return Node.model_validate({
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def pod(name: str, *, cpu: str | None = None, memory: str | None = None, node_name: str | None = None,
        selector: dict | None = None, limits_only: bool = False, phase: str = "Running") -> Pod:
    res = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    resources = {"limits": res} if limits_only else {"requests": res}
    return Pod.model_validate({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i:1", "resources": resources}],
                 "nodeName": node_name, "nodeSelector": selector},
        "status": {"phase": phase}})


def test_requests_sum_containers_and_limits_stand_in_for_missing_requests():
    assert pod_requests(pod("a", cpu="250m", memory="64Mi")).cpu_millis == 250
    assert pod_requests(pod("a", cpu="1", limits_only=True)).cpu_millis == 1000
    assert pod_requests(pod("a", memory="1Gi")).memory == 2**30


def test_pod_with_unmatched_selector_stays_pending():
    result = feasible_nodes(pod("p", selector={"disk": "ssd"}), [node("a"), node("b")], [])
    assert result.nodes == []
    assert result.message() == ("0/2 nodes are available: 2 node(s) didn't match Pod's "
                                "node affinity/selector.")


def test_not_ready_and_unschedulable_nodes_are_filtered_with_reasons():
    nodes = [node("a", ready=False), node("b", unschedulable=True), node("c")]
    result = feasible_nodes(pod("p"), nodes, [])
    assert [n.metadata.name for n in result.nodes] == ["c"]
    assert dict(result.reasons) == {"node(s) were not ready": 1, "node(s) were unschedulable": 1}


def test_resources_already_requested_on_a_node_count_against_it():
    busy = [pod("x", cpu="1500m", node_name="a")]
    result = feasible_nodes(pod("p", cpu="600m"), [node("a"), node("b")], busy)
    assert [n.metadata.name for n in result.nodes] == ["b"]
    assert dict(result.reasons) == {"Insufficient cpu": 1}


def test_finished_pods_do_not_hold_resources():
    done = [pod("x", cpu="2", node_name="a", phase="Succeeded")]
    assert [n.metadata.name for n in feasible_nodes(pod("p", cpu="1"), [node("a")], done).nodes] == ["a"]


def test_memory_and_pod_count_limits():
    assert dict(feasible_nodes(pod("p", memory="3Gi"), [node("a")], []).reasons) == {
        "Insufficient memory": 1}
    full = [pod(f"x{i}", node_name="a") for i in range(2)]
    assert dict(feasible_nodes(pod("p"), [node("a", pods="2")], full).reasons) == {
        "Too many pods": 1}


def test_no_nodes_message():
    assert feasible_nodes(pod("p"), [], []).message() == "0/0 nodes are available: no nodes registered."


def test_least_allocated_node_wins_and_ties_go_to_the_first_name():
    busy = [pod("x", cpu="1", node_name="a")]
    assert pick_node(pod("p", cpu="100m"), [node("a"), node("b")], busy).metadata.name == "b"
    assert pick_node(pod("p", cpu="100m"), [node("b"), node("a")], []).metadata.name == "a"


def test_a_node_whose_lease_expired_is_not_ready():
    result = feasible_nodes(pod("p"), [node("a"), node("b")], [], live={"b"})
    assert [n.metadata.name for n in result.nodes] == ["b"]
    assert dict(result.reasons) == {"node(s) were not ready": 1}


def test_pods_without_requests_spread_as_kubernetes_counts_them_non_zero():
    nodes = [node("a"), node("b"), node("c")]
    placed: list = []
    for i in range(6):
        p = pod(f"p{i}")
        p.spec.node_name = pick_node(p, nodes, placed).metadata.name
        placed.append(p)
    assert [p.spec.node_name for p in placed] == ["a", "b", "c", "a", "b", "c"]
    # fitting still counts what is asked for: nothing
    assert pod_requests(pod("p")).cpu_millis == 0


def test_init_containers_and_sidecars_count_as_kubernetes_counts_them():
    def box(name: str, cpu: str, sidecar: bool = False) -> dict:
        return {"name": name, "image": "i:1", "resources": {"requests": {"cpu": cpu}},
                **({"restartPolicy": "Always"} if sidecar else {})}

    def requests(inits: list[dict]) -> int:
        return pod_requests(Pod.model_validate({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"initContainers": inits, "containers": [box("app", "200m")]}})).cpu_millis

    assert requests([box("big", "1")]) == 1000  # the init container runs alone: the max
    assert requests([box("small", "100m")]) == 200  # the app is the larger
    # a sidecar runs beside the app and beside the init containers after it
    assert requests([box("proxy", "50m", sidecar=True), box("init", "900m")]) == 950
    assert requests([box("proxy", "50m", sidecar=True)]) == 250
