"""resizePolicy and the pods/resize checks, in Kubernetes' words (api/resize.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.api.resize import merge_resize_patch, resize_problems
from peapod.errors import Invalid

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "spec": {"containers": [{
        "name": "app", "image": "busybox:1",
        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"},
                      "limits": {"cpu": "200m", "memory": "64Mi"}}}]},
}


def pod_with(**container: Any) -> Pod:
    doc = copy.deepcopy(POD)
    doc["spec"]["containers"][0].update(container)
    pod = parse_object(doc)
    assert isinstance(pod, Pod)
    return pod


def refusal(policies: list[dict[str, str]], restart: str = "Always") -> str:
    doc = copy.deepcopy(POD)
    doc["spec"]["containers"][0]["resizePolicy"] = policies
    doc["spec"]["restartPolicy"] = restart
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    return info.value.message


def test_resize_policies_of_the_documentation_are_accepted():
    pod = pod_with(resizePolicy=[{"resourceName": "cpu", "restartPolicy": "NotRequired"},
                                 {"resourceName": "memory", "restartPolicy": "RestartContainer"}])
    assert [p.restart_policy for p in pod.spec.containers[0].resize_policy or []] == \
        ["NotRequired", "RestartContainer"]


def test_resize_policies_are_checked_as_kubernetes_does():
    where = "spec.containers[0].resizePolicy"
    assert refusal([{"resourceName": "gpu", "restartPolicy": "NotRequired"}]).endswith(
        f"{where}[0].resourceName: unsupported value 'gpu', supported values: 'cpu' or 'memory'")
    assert refusal([{"resourceName": "cpu", "restartPolicy": "Sometimes"}]).endswith(
        f"{where}[0].restartPolicy: unsupported value 'Sometimes', supported values: "
        "'NotRequired' or 'RestartContainer'")
    assert f'{where}[1]: Duplicate value: "cpu"' in refusal(
        [{"resourceName": "cpu", "restartPolicy": "NotRequired"},
         {"resourceName": "cpu", "restartPolicy": "NotRequired"}])
    assert refusal([{"resourceName": "cpu"}]).endswith(f"{where}[0].restartPolicy: required value")
    assert "must be 'NotRequired' when `restartPolicy` is 'Never'" in refusal(
        [{"resourceName": "memory", "restartPolicy": "RestartContainer"}], restart="Never")
    doc = copy.deepcopy(POD)
    doc["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1", "resizePolicy": [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"}]}]
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    assert info.value.message.endswith(
        "spec.initContainers[0].resizePolicy: Forbidden: must not be set for init containers")


def resized(patch: Any) -> tuple[Pod, list[str]]:
    old = pod_with()
    new = parse_object(merge_resize_patch(old, patch))
    assert isinstance(new, Pod)
    return new, resize_problems(old, new)


def test_a_resize_patch_merges_by_container_name_and_key():
    new, problems = resized({"spec": {"containers": [{"name": "app", "resources": {
        "limits": {"cpu": "1"}}}]}})
    assert problems == []
    assert new.spec.containers[0].resources.limits == {"cpu": "1", "memory": "64Mi"}  # type: ignore[union-attr]
    assert new.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "32Mi"}  # type: ignore[union-attr]


def test_a_resize_that_changes_more_than_cpu_and_memory_is_refused():
    _, problems = resized({"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"cpu": "200m", "memory": "64Mi"}}}]}})
    assert problems == ['spec: Invalid value: "Guaranteed": Pod QOS Class may not change as a '
                        "result of resizing"]
    _, problems = resized({"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"cpu": None}}}]}})
    assert problems == ["spec.containers[0].resources.requests: Forbidden: resource requests "
                        "cannot be removed"]
    for patch in ({"spec": {"containers": [{"name": "app", "image": "busybox:2"}]}},
                  {"spec": {"restartPolicy": "Never"}},
                  {"spec": {"containers": [{"name": "app", "resources": {
                      "limits": {"ephemeral-storage": "1Gi"}}}]}}):
        assert resized(patch)[1] == ["spec: Forbidden: only cpu and memory resources are mutable"]
    with pytest.raises(ValueError):
        merge_resize_patch(pod_with(), {"metadata": {"labels": {"a": "b"}}})
