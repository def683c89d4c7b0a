"""The scheduling fields of a Pod: stored as written, refused in Kubernetes' words."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.apiserver.admission import admit_new_pod, merge_applied_pod
from peapod.cli.describe import describe_toleration
from peapod.cli.printers import pod_status_reason
from peapod.errors import Invalid

BASE: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"containers": [{"name": "c", "image": "i:1"}]}}

FULL_SPEC: dict[str, Any] = {
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                     "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 60}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn",
                                  "values": ["n9"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [
                    {"key": "cores", "operator": "Gt", "values": ["3"]}]}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
             "namespaces": ["data"]}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["web"]}]},
                "topologyKey": "kubernetes.io/hostname"}}]}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                   "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2,
                                   "labelSelector": {"matchLabels": {"app": "web"}}}],
    "schedulingGates": [{"name": "example.com/foo"}],
    "priorityClassName": "high-priority",
    "serviceAccountName": "builder",
    "schedulerName": "my-scheduler",
}


def with_spec(**spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc["spec"].update(copy.deepcopy(spec))
    return doc


def refusal(**spec: Any) -> str:
    with pytest.raises(Invalid) as info:
        parse_object(with_spec(**spec))
    return info.value.message


def test_every_scheduling_field_round_trips() -> None:
    pod = parse_object(with_spec(**FULL_SPEC))
    assert isinstance(pod, Pod)
    wire = pod.to_wire()["spec"]
    for key, value in FULL_SPEC.items():
        assert wire[key] == value


def test_scheduler_name_defaults_as_in_kubernetes() -> None:
    pod = parse_object(BASE)
    assert isinstance(pod, Pod) and pod.to_wire()["spec"]["schedulerName"] == "default-scheduler"


@pytest.mark.parametrize(("spec", "message"), [
    ({"tolerations": [{"value": "x"}]},
     'spec.tolerations[0].operator: Invalid value: "": operator must be Exists when `key` is '
     'empty, which means "match all values and all keys"'),
    ({"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' "
     "when `tolerationSeconds` is set"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
     "spec.tolerations[0].operator: Invalid value: 'v': value must be empty when `operator` is "
     "'Exists'"),
    ({"tolerations": [{"key": "k", "operator": "Gt", "value": "9"}]},
     "spec.tolerations[0].operator: unsupported value 'Gt', supported values: 'Exists' or "
     "'Equal'"),
    ({"tolerations": [{"key": "bad key", "operator": "Exists"}]},
     "spec.tolerations[0].key: Invalid value: 'bad key': name part must consist of"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": []}}}},
     "nodeSelectorTerms: Required value: must have at least one node selector term"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In"}]}]}}}},
     "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' "
     "or 'NotIn'"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "k", "operator": "Gt", "values": ["1", "2"]}]}]}}}},
     "must be specified single value when `operator` is 'Lt' or 'Gt'"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.labels", "operator": "In", "values": ["a"]}]}]}}}},
     "matchFields[0].key: Invalid value: \"metadata.labels\": must be 'metadata.name'"),
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 0, "preference": {}}]}}},
     "preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in "
     "the range 1-100"),
    ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}}]}}},
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
     ".topologyKey: Required value: can not be empty"),
    ({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "zone", "namespaceSelector": {}}]}}},
     "namespaceSelector: unknown field"),
    ({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone",
                                     "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero"),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "minDomains": 2,
                                     "whenUnsatisfiable": "ScheduleAnyway"}]},
     "minDomains: Invalid value: 2: can only use minDomains if "
     "whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"),
    ({"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     'spec.topologySpreadConstraints[1]: Duplicate value: "{zone, DoNotSchedule}"'),
    ({"schedulingGates": [{"name": "a"}, {"name": "a"}]},
     'spec.schedulingGates[1]: Duplicate value: "a"'),
    ({"schedulingGates": [{"name": "a"}], "nodeName": "n1"},
     "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"),
    ({"priorityClassName": "Not_Valid"}, "spec.priorityClassName: Invalid value: 'Not_Valid'"),
])
def test_refusals_name_the_field_in_kubernetes_words(spec: dict, message: str) -> None:
    assert message in refusal(**spec)


def test_a_gated_pod_reads_scheduling_gated_until_its_gates_are_removed() -> None:
    doc = with_spec(schedulingGates=[{"name": "example.com/a"}, {"name": "example.com/b"}])
    stored = admit_new_pod(doc)
    assert pod_status_reason(stored)[0] == "SchedulingGated"
    cond = (stored.status.conditions or [])[0] if stored.status else None
    assert cond is not None and (cond.type, cond.status, cond.reason) == (
        "PodScheduled", "False", "SchedulingGated")
    one_left = parse_object(with_spec(schedulingGates=[{"name": "example.com/b"}]))
    assert isinstance(one_left, Pod)
    merged, verb = merge_applied_pod(stored, one_left)
    assert verb == "configured" and pod_status_reason(merged)[0] == "SchedulingGated"
    none_left = parse_object(BASE)
    assert isinstance(none_left, Pod)
    merged, verb = merge_applied_pod(merged, none_left)
    assert verb == "configured" and merged.spec.scheduling_gates is None
    assert pod_status_reason(merged)[0] == "Pending"
    assert merge_applied_pod(merged, none_left)[1] == "unchanged"


def test_gates_may_only_be_removed() -> None:
    stored = admit_new_pod(with_spec(schedulingGates=[{"name": "a"}]))
    more = parse_object(with_spec(schedulingGates=[{"name": "a"}, {"name": "b"}]))
    assert isinstance(more, Pod)
    with pytest.raises(Invalid) as info:
        merge_applied_pod(stored, more)
    assert ("spec.schedulingGates: Forbidden: only deletion is allowed, but found new "
            "scheduling gate 'b'") in info.value.message


@pytest.mark.parametrize(("toleration", "text"), [
    ({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
      "tolerationSeconds": 300}, "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s"),
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
     "dedicated=gpu:NoSchedule"),
    ({"operator": "Exists"}, "op=Exists"),
])
def test_describe_shows_tolerations_as_kubectl(toleration: dict, text: str) -> None:
    from peapod.api.scheduling import Toleration
    assert describe_toleration(Toleration.model_validate(toleration)) == text
