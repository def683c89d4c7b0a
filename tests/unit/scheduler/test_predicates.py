"""Each scheduling predicate on its own, table cases after Kubernetes' plugin tests
(tainttoleration, nodeaffinity, nodeports, interpodaffinity, podtopologyspread)."""

from __future__ import annotations

from typing import Any

import pytest

from peapod.api import Node, Pod
from peapod.api.node import Taint
from peapod.api.pod import ResourceRequirements
from peapod.api.scheduling import NodeSelectorRequirement, Toleration, requirement_matches
from peapod.scheduler.filters import feasible_nodes
from peapod.scheduler.scores import pick_node


def node(name: str, *, labels: dict | None = None, taints: list | None = None,
         unschedulable: bool = False) -> Node:
    return Node.model_validate({
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints},
        "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}})


def pod(name: str = "p", *, labels: dict | None = None, node_name: str | None = None,
        namespace: str = "default", ports: list | None = None, **spec: Any) -> Pod:
    container: dict = {"name": "c", "image": "i:1", **({"ports": ports} if ports else {})}
    return Pod.model_validate({
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [container], "nodeName": node_name, **spec},
        "status": {"phase": "Running"}})


def names(result: Any) -> list[str]:
    return [n.metadata.name for n in result.nodes]


# -- tolerations (Kubernetes' TestTaintTolerationFilter and ToleratesTaint cases) -----------

@pytest.mark.parametrize(("toleration", "taint", "tolerated"), [
    ({"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoSchedule"},
     {"key": "foo", "value": "bar", "effect": "NoSchedule"}, True),
    ({"key": "foo", "value": "bar", "effect": "NoSchedule"},  # no operator means Equal
     {"key": "foo", "value": "bar", "effect": "NoSchedule"}, True),
    ({"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoSchedule"},
     {"key": "foo", "value": "blah", "effect": "NoSchedule"}, False),
    ({"key": "foo", "operator": "Exists", "effect": "NoSchedule"},
     {"key": "foo", "value": "anything", "effect": "NoSchedule"}, True),
    ({"key": "foo", "operator": "Exists"},  # no effect tolerates every effect
     {"key": "foo", "value": "bar", "effect": "NoExecute"}, True),
    ({"operator": "Exists"}, {"key": "any", "value": "x", "effect": "NoExecute"}, True),
    ({"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"},
     {"key": "foo", "value": "bar", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "foo", "effect": "NoSchedule"}, False),
])
def test_toleration_tolerates_taint(toleration: dict, taint: dict, tolerated: bool) -> None:
    assert Toleration.model_validate(toleration).tolerates(Taint.model_validate(taint)) is tolerated


def test_untolerated_noschedule_and_noexecute_taints_filter_with_kubernetes_message() -> None:
    nodes = [node("a", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
             node("b", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
             node("c", taints=[{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}])]
    result = feasible_nodes(pod(), nodes, [])
    assert names(result) == ["c"]
    assert result.message() == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    tolerant = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                 "effect": "NoSchedule"}])
    assert names(feasible_nodes(tolerant, nodes, [])) == ["a", "c"]


def test_prefer_no_schedule_taints_only_lower_the_score() -> None:
    nodes = [node("a", taints=[{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}]),
             node("b")]
    assert pick_node(pod(), nodes, []).metadata.name == "b"
    tolerant = pod(tolerations=[{"key": "soft", "operator": "Exists"}])
    assert pick_node(tolerant, nodes, []).metadata.name == "a"  # a tie: the first name


def test_a_cordoned_node_takes_pods_that_tolerate_its_unschedulable_taint() -> None:
    nodes = [node("a", unschedulable=True)]
    assert feasible_nodes(pod(), nodes, []).message() == (
        "0/1 nodes are available: 1 node(s) were unschedulable.")
    tolerant = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                 "effect": "NoSchedule"}])
    assert names(feasible_nodes(tolerant, nodes, [])) == ["a"]


# -- node affinity (Kubernetes' TestNodeAffinity cases) ---------------------------------------

@pytest.mark.parametrize(("operator", "values", "labels", "matches"), [
    ("In", ["bar", "value2"], {"foo": "bar"}, True),
    ("In", ["bar"], {"foo": "baz"}, False),
    ("In", ["bar"], {}, False),
    ("NotIn", ["bar"], {"foo": "baz"}, True),
    ("NotIn", ["bar"], {}, True),
    ("NotIn", ["bar"], {"foo": "bar"}, False),
    ("Exists", None, {"foo": ""}, True),
    ("Exists", None, {"bar": "x"}, False),
    ("DoesNotExist", None, {"bar": "x"}, True),
    ("DoesNotExist", None, {"foo": "x"}, False),
    ("Gt", ["0"], {"foo": "3"}, True),
    ("Gt", ["3"], {"foo": "3"}, False),
    ("Lt", ["10"], {"foo": "3"}, True),
    ("Lt", ["10"], {"foo": "x"}, False),  # not an integer: no match
    ("Gt", ["0"], {}, False),
])
def test_node_selector_requirement(operator: str, values: list | None, labels: dict,
                                   matches: bool) -> None:
    req = NodeSelectorRequirement(key="foo", operator=operator, values=values)  # type: ignore[arg-type]
    assert requirement_matches(req, labels) is matches


def affinity(*terms: dict, preferred: list | None = None) -> dict:
    node_affinity: dict = {}
    if terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": list(terms)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": node_affinity}


def test_required_node_affinity_terms_are_ored_and_expressions_anded() -> None:
    nodes = [node("a", labels={"zone": "z1", "disk": "ssd"}), node("b", labels={"zone": "z1"}),
             node("c", labels={"zone": "z2"})]
    both = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]},
                                 {"key": "disk", "operator": "Exists"}]}
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}
    result = feasible_nodes(pod(affinity=affinity(both, by_name)), nodes, [])
    assert names(result) == ["a", "c"]
    assert result.message() == ("0/3 nodes are available: 1 node(s) didn't match Pod's node "
                                "affinity/selector.")


def test_node_selector_and_node_affinity_must_both_hold() -> None:
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1", "gpu": "yes"})]
    term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}
    assert names(feasible_nodes(pod(affinity=affinity(term), nodeSelector={"gpu": "yes"}),
                                nodes, [])) == ["b"]


def test_an_empty_node_selector_term_matches_no_node() -> None:
    assert names(feasible_nodes(pod(affinity=affinity({})), [node("a")], [])) == []


def test_preferred_node_affinity_weights_decide_among_feasible_nodes() -> None:
    nodes = [node("a", labels={"l1": "v"}), node("b", labels={"l2": "v"}),
             node("c", labels={"l1": "v", "l2": "v"})]
    preferred = [{"weight": 1, "preference": {"matchExpressions": [
                     {"key": "l1", "operator": "Exists"}]}},
                 {"weight": 50, "preference": {"matchExpressions": [
                     {"key": "l2", "operator": "Exists"}]}}]
    assert pick_node(pod(affinity=affinity(preferred=preferred)), nodes, []).metadata.name == "c"
    assert pick_node(pod(affinity=affinity(preferred=preferred[:1])), nodes[:2],
                     []).metadata.name == "a"


# -- host ports (Kubernetes' TestNodePorts cases) --------------------------------------------

@pytest.mark.parametrize(("wanted", "taken", "free"), [
    ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8080}, False),
    ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}, True),
    ({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"},
     {"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}, True),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
     {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}, True),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
     {"containerPort": 80, "hostPort": 8080}, False),  # 0.0.0.0 takes every address
    ({"containerPort": 80}, {"containerPort": 80}, True),  # no hostPort: nothing taken
])
def test_host_port_conflicts(wanted: dict, taken: dict, free: bool) -> None:
    existing = [pod("x", node_name="a", ports=[taken])]
    result = feasible_nodes(pod(ports=[wanted]), [node("a")], existing)
    assert (names(result) == ["a"]) is free
    if not free:
        assert result.message() == ("0/1 nodes are available: 1 node(s) didn't have free ports "
                                    "for the requested pod ports.")


def test_a_host_network_pod_takes_its_container_ports() -> None:
    existing = [pod("x", node_name="a", hostNetwork=True, ports=[{"containerPort": 9000}])]
    assert names(feasible_nodes(pod(ports=[{"containerPort": 1, "hostPort": 9000}]),
                                [node("a")], existing)) == []


# -- inter-pod affinity (Kubernetes' TestRequiredAffinitySingleNode / MultipleNodes) ---------

ZONES = [node("a", labels={"zone": "z1", "host": "a"}), node("b", labels={"zone": "z1", "host": "b"}),
         node("c", labels={"zone": "z2", "host": "c"})]


def pod_affinity(kind: str, key: str, selector: dict, *, weight: int | None = None,
                 namespaces: list | None = None) -> dict:
    term: dict = {"labelSelector": {"matchLabels": selector}, "topologyKey": key}
    if namespaces:
        term["namespaces"] = namespaces
    if weight is None:
        return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": term}]}}


def test_required_pod_affinity_follows_the_topology_domain() -> None:
    existing = [pod("db", labels={"app": "db"}, node_name="b")]
    web = pod(affinity=pod_affinity("podAffinity", "zone", {"app": "db"}))
    result = feasible_nodes(web, ZONES, existing)
    assert names(result) == ["a", "b"]
    assert result.message() == "0/3 nodes are available: 1 node(s) didn't match pod affinity rules."


def test_required_pod_affinity_looks_only_in_the_terms_namespaces() -> None:
    existing = [pod("db", labels={"app": "db"}, node_name="b", namespace="other")]
    assert names(feasible_nodes(pod(affinity=pod_affinity("podAffinity", "zone", {"app": "db"})),
                                ZONES, existing)) == []
    web = pod(affinity=pod_affinity("podAffinity", "zone", {"app": "db"}, namespaces=["other"]))
    assert names(feasible_nodes(web, ZONES, existing)) == ["a", "b"]


def test_the_first_pod_of_a_self_selecting_group_may_go_anywhere() -> None:
    first = pod(labels={"app": "web"}, affinity=pod_affinity("podAffinity", "zone", {"app": "web"}))
    assert names(feasible_nodes(first, ZONES, [])) == ["a", "b", "c"]
    stranger = pod(affinity=pod_affinity("podAffinity", "zone", {"app": "web"}))
    assert names(feasible_nodes(stranger, ZONES, [])) == []


def test_required_anti_affinity_and_its_symmetry() -> None:
    existing = [pod("w1", labels={"app": "web"}, node_name="a")]
    spread = pod(labels={"app": "web"},
                 affinity=pod_affinity("podAntiAffinity", "host", {"app": "web"}))
    result = feasible_nodes(spread, ZONES, existing)
    assert names(result) == ["b", "c"]
    assert result.message() == ("0/3 nodes are available: 1 node(s) didn't match pod "
                                "anti-affinity rules.")
    # an existing pod's anti-affinity keeps a pod it selects out of its zone
    guarded = [pod("g", labels={"app": "g"}, node_name="c",
                   affinity=pod_affinity("podAntiAffinity", "zone", {"app": "web"}))]
    result = feasible_nodes(pod(labels={"app": "web"}), ZONES, guarded)
    assert names(result) == ["a", "b"]
    assert result.message() == ("0/3 nodes are available: 1 node(s) didn't satisfy existing "
                                "pods anti-affinity rules.")


def test_preferred_pod_affinity_and_anti_affinity_score() -> None:
    existing = [pod("db", labels={"app": "db"}, node_name="c")]
    near = pod(affinity=pod_affinity("podAffinity", "zone", {"app": "db"}, weight=100))
    assert pick_node(near, ZONES, existing).metadata.name == "c"
    away = pod(affinity=pod_affinity("podAntiAffinity", "zone", {"app": "db"}, weight=100))
    assert pick_node(away, ZONES, existing).metadata.name in ("a", "b")


# -- topology spread (Kubernetes' TestSingleConstraint cases) --------------------------------

def spread(key: str, *, skew: int = 1, when: str = "DoNotSchedule", **extra: Any) -> dict:
    return {"topologySpreadConstraints": [{
        "maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}}, **extra}]}


def web(name: str, node_name: str | None = None, **spec: Any) -> Pod:
    return pod(name, labels={"app": "web"}, node_name=node_name, **spec)


def test_do_not_schedule_keeps_the_skew_within_max_skew() -> None:
    existing = [web("w1", "a"), web("w2", "b")]  # z1 has 2, z2 has 0
    result = feasible_nodes(web("new", **spread("zone")), ZONES, existing)
    assert names(result) == ["c"]
    assert result.message() == ("0/3 nodes are available: 2 node(s) didn't match pod topology "
                                "spread constraints.")
    assert names(feasible_nodes(web("new", **spread("zone", skew=3)), ZONES, existing)) == [
        "a", "b", "c"]


def test_spread_needs_the_topology_label_and_counts_only_matching_pods() -> None:
    nodes = [*ZONES, node("d")]
    result = feasible_nodes(web("new", **spread("zone")), nodes, [pod("other", node_name="a")])
    assert names(result) == ["a", "b", "c"]
    assert result.message() == ("0/4 nodes are available: 1 node(s) didn't match pod topology "
                                "spread constraints (missing required label).")


def test_min_domains_counts_missing_domains_as_empty() -> None:
    existing = [web("w1", "a"), web("w2", "c")]  # one in each of the 2 zones
    assert names(feasible_nodes(web("new", **spread("zone")), ZONES, existing)) == ["a", "b", "c"]
    assert names(feasible_nodes(web("new", **spread("zone", minDomains=3)), ZONES,
                                existing)) == []


def test_spread_counts_only_nodes_matching_the_pods_node_affinity() -> None:
    existing = [web("w1", "a")]
    only_z1 = {"nodeSelector": {"zone": "z1"}}
    # z2 is not a domain for this pod, so z1 is at once the smallest and the one it joins
    assert names(feasible_nodes(web("new", **spread("zone"), **only_z1), ZONES,
                                existing)) == ["a", "b"]


def test_schedule_anyway_prefers_the_emptier_domain() -> None:
    existing = [web("w1", "a"), web("w2", "b")]
    assert pick_node(web("new", **spread("zone", when="ScheduleAnyway")), ZONES,
                     existing).metadata.name == "c"


# -- extended resources (Kubernetes' NodeResourcesFit with scalar resources) ----------------

def dongle_node(name: str, count: int | None) -> Node:
    made = node(name)
    if count is not None and made.status and made.status.allocatable is not None:
        made.status.allocatable["example.com/dongle"] = str(count)
    return made


def dongle_pod(name: str, count: int, node_name: str | None = None) -> Pod:
    made = pod(name, node_name=node_name)
    made.spec.containers[0].resources = ResourceRequirements(
        limits={"example.com/dongle": str(count)})
    return made


def test_extended_resources_are_counted_and_never_overcommitted() -> None:
    nodes = [dongle_node("none", None), dongle_node("two", 2), dongle_node("one", 1)]
    placed = [dongle_pod("x", 1, node_name="one")]
    fits = feasible_nodes(dongle_pod("p", 1), nodes, placed)
    assert names(fits) == ["two"]
    assert fits.reasons == {"Insufficient example.com/dongle": 2}
    too_many = feasible_nodes(dongle_pod("q", 3), nodes, placed)
    assert too_many.message() == ("0/3 nodes are available: 3 Insufficient "
                                  "example.com/dongle.")
    assert names(feasible_nodes(pod("plain"), nodes, placed)) == ["none", "two", "one"]
