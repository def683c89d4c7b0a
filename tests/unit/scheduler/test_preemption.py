"""Preemption decisions (kube-scheduler's DefaultPreemption), from constructed objects."""

from __future__ import annotations

from peapod.api import Pod
from peapod.scheduler.filters import feasible_nodes
from peapod.scheduler.preemption import (
    Candidate,
    Refusal,
    find_preemption,
    victims_on,
    with_nominated,
)
from tests.unit.scheduler.test_filters import node, pod


def ranked(name: str, priority: int, *, cpu: str = "1", node_name: str | None = "a",
           start: str = "2026-01-01T00:00:00Z", policy: str | None = None,
           nominated: str | None = None, deleting: bool = False) -> Pod:
    p = pod(name, cpu=cpu, node_name=node_name, phase="Running" if node_name else "Pending")
    p.spec.priority = priority
    p.spec.preemption_policy = policy  # type: ignore[assignment]
    p.metadata.uid = f"uid-{name}"
    p.metadata.creation_timestamp = start
    assert p.status is not None
    p.status.start_time = start if node_name else None
    p.status.nominated_node_name = nominated
    p.metadata.deletion_timestamp = "2026-01-01T00:01:00Z" if deleting else None
    return p


def names(pods: list[Pod]) -> list[str]:
    return sorted(p.metadata.name or "" for p in pods)


def test_only_lower_priority_pods_are_victims_and_as_few_as_needed() -> None:
    # a 4-cpu node full of 1-cpu pods: two of lower priority must go for a 2-cpu pod
    pods = [ranked("low-1", 1), ranked("low-2", 2), ranked("low-3", 3), ranked("same", 10)]
    incoming = ranked("high", 10, cpu="2", node_name=None)
    victims = victims_on(incoming, node("a", cpu="4"), [node("a", cpu="4")], pods)
    assert victims is not None and names(victims) == ["low-1", "low-2"]  # low-3 is reprieved


def test_equal_priority_is_never_a_victim() -> None:
    pods = [ranked("same", 10, cpu="2")]
    result = find_preemption(ranked("p", 10, cpu="2", node_name=None), [node("a", cpu="2")], pods)
    assert result == Refusal("0/1 nodes are available: 1 No preemption victims found for "
                             "incoming pod.")


def test_the_node_with_the_least_important_victims_is_chosen() -> None:
    pods = [ranked("a-pod", 5, cpu="2", node_name="a"),
            ranked("b-pod", 3, cpu="2", node_name="b"),
            ranked("c-1", 1, node_name="c"), ranked("c-2", 1, node_name="c")]
    nodes = [node("a", cpu="2"), node("b", cpu="2"), node("c", cpu="2")]
    result = find_preemption(ranked("p", 100, cpu="2", node_name=None), nodes, pods)
    # c's highest victim (1) is lower than b's (3) and a's (5), though c has two victims
    assert isinstance(result, Candidate) and result.node_name == "c"
    assert names(result.victims) == ["c-1", "c-2"]
    # same highest priority: the smaller sum, then fewer victims
    pods = [ranked("a-1", 1, node_name="a"), ranked("a-2", 1, node_name="a"),
            ranked("b-1", 1, cpu="2", node_name="b")]
    result = find_preemption(ranked("p", 100, cpu="2", node_name=None), nodes[:2], pods)
    assert isinstance(result, Candidate) and result.node_name == "b"


def test_never_pods_do_not_preempt() -> None:
    result = find_preemption(ranked("p", 100, cpu="2", node_name=None, policy="Never"),
                             [node("a", cpu="2")], [ranked("low", 1, cpu="2")])
    assert result == Refusal("not eligible due to preemptionPolicy=Never.")


def test_a_pod_waits_for_its_earlier_victims_instead_of_preempting_again() -> None:
    pods = [ranked("going", 1, cpu="2", deleting=True), ranked("other", 1, cpu="2", node_name="b")]
    incoming = ranked("p", 100, cpu="2", node_name=None, nominated="a")
    result = find_preemption(incoming, [node("a", cpu="2"), node("b", cpu="2")], pods)
    assert result == Refusal("not eligible due to a terminating pod on the nominated node.")


def test_nodes_that_eviction_cannot_help_are_not_candidates() -> None:
    cordoned = node("a", cpu="2", unschedulable=True)
    result = find_preemption(ranked("p", 100, cpu="2", node_name=None), [cordoned, node("b")],
                             [ranked("low", 1, cpu="2"), ranked("big", 200, cpu="2", node_name="b")])
    assert result == Refusal("0/2 nodes are available: 1 No preemption victims found for "
                             "incoming pod, 1 Preemption is not helpful for scheduling.")


def test_a_nominated_pod_holds_its_room_against_less_important_pods() -> None:
    waiting = ranked("nominated", 100, cpu="2", node_name=None, nominated="a")
    lesser = ranked("lesser", 50, cpu="2", node_name=None)
    nodes = [node("a", cpu="2")]
    assert feasible_nodes(lesser, nodes, with_nominated(lesser, [waiting])).nodes == []
    greater = ranked("greater", 200, cpu="2", node_name=None)
    assert feasible_nodes(greater, nodes, with_nominated(greater, [waiting])).nodes == nodes
    # and the nominated pod itself is not in its own way
    assert feasible_nodes(waiting, nodes, with_nominated(waiting, [waiting])).nodes == nodes


def test_a_node_its_volume_cannot_reach_is_no_candidate() -> None:
    # the pod's local volume lives on node a; only b has a lower-priority pod to evict:
    # evicting it would not let the pod run on b, so nothing is evicted
    from tests.unit.scheduler.test_volumes import claiming_pod, view
    incoming = claiming_pod("data")
    incoming.spec.priority = 100
    incoming.spec.containers[0].resources = ranked("x", 0, cpu="2").spec.containers[0].resources
    nodes = [node("a", cpu="2", labels={"kubernetes.io/hostname": "a"}),
             node("b", cpu="2", labels={"kubernetes.io/hostname": "b"})]
    pods = [ranked("a-pod", 1000, cpu="2", node_name="a"), ranked("b-pod", 1, cpu="2",
                                                                  node_name="b")]
    assert isinstance(find_preemption(incoming, nodes, pods), Candidate)  # blind to volumes
    result = find_preemption(incoming, nodes, pods, volumes=view())
    assert result == Refusal("0/2 nodes are available: 1 No preemption victims found for "
                             "incoming pod, 1 Preemption is not helpful for scheduling.")
