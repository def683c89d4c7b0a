"""Pod-level resources (KEP-2837): validation in Kubernetes' words, defaulting, what the
scheduler counts, and the QoS class."""

from __future__ import annotations

from typing import Any

import pytest

from peapod.api import Pod
from peapod.api.resources import pod_requests, qos_class
from peapod.api.validation import pod_problems


def pod(resources: dict[str, Any] | None = None, *containers: dict[str, Any],
        init: list[dict[str, Any]] | None = None) -> Pod:
    spec: dict[str, Any] = {"containers": [
        {"name": f"c{i}", "image": "i:1", **({"resources": r} if r else {})}
        for i, r in enumerate(containers or [{}])]}
    if resources is not None:
        spec["resources"] = resources
    if init:
        spec["initContainers"] = init
    return Pod.model_validate({"metadata": {"name": "p"}, "spec": spec})


def test_the_example_of_kubernetes_documentation_is_refused_with_its_messages() -> None:
    # the error a Kubernetes 1.34 apiserver returns for this pod (requests below the containers')
    refused = pod({"requests": {"cpu": "1", "memory": "576Mi"}},
                  {"requests": {"cpu": "1", "memory": "4Gi"}},
                  {"requests": {"cpu": "500m", "memory": "2Gi"}})
    assert pod_problems(refused) == [
        'spec.resources.requests[cpu]: Invalid value: "1": must be greater than or equal to '
        "aggregate container requests of 1500m",
        'spec.resources.requests[memory]: Invalid value: "576Mi": must be greater than or equal '
        "to aggregate container requests of 6Gi"]


@pytest.mark.parametrize(("resources", "containers", "problem"), [
    ({"limits": {"ephemeral-storage": "1Gi"}}, [{}],
     'spec.resources.limits[ephemeral-storage]: Unsupported value: "ephemeral-storage": '
     'supported values: "cpu", "memory"'),
    ({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}, [{}],
     'spec.resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ({"limits": {"memory": "64Mi"}}, [{"limits": {"memory": "128Mi"}}],
     'spec.resources.containers[0][memory].limits: Invalid value: "128Mi": must be less than or '
     "equal to pod limits of 64Mi"),
    ({"limits": {"cpu": "lots"}}, [{}], "spec.resources.limits[cpu]: quantities must match"),
])
def test_invalid_pod_level_resources_are_refused(resources: dict, containers: list[dict],
                                                 problem: str) -> None:
    problems = pod_problems(pod(resources, *containers))
    assert len(problems) >= 1 and problems[0].startswith(problem), problems


def test_a_pod_level_limit_defaults_the_request_unless_a_container_requests_it() -> None:
    defaulted = pod({"limits": {"cpu": "1", "memory": "1Gi"}}, {"requests": {"memory": "100Mi"}})
    assert defaulted.spec.resources is not None
    assert defaulted.spec.resources.requests == {"cpu": "1"}  # memory: derived from containers
    assert pod_problems(defaulted) == []


def test_the_scheduler_counts_pod_level_requests_where_set() -> None:
    containers = ({"requests": {"cpu": "100m", "memory": "64Mi"}},
                  {"requests": {"cpu": "200m", "memory": "64Mi"}})
    assert pod_requests(pod(None, *containers)).cpu == 300
    counted = pod_requests(pod({"requests": {"cpu": "1"}}, *containers))
    assert (counted.cpu, counted.memory) == (1000, 128 * 1024 * 1024)
    sidecar = [{"name": "s", "image": "i:1", "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "50m"}}}]
    assert pod_requests(pod(None, *containers, init=sidecar)).cpu == 350


@pytest.mark.parametrize(("resources", "containers", "expected"), [
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, [{}], "Guaranteed"),
    ({"requests": {"cpu": "1"}}, [{"limits": {"cpu": "2", "memory": "1Gi"}}], "Burstable"),
    ({"limits": {"cpu": "1"}}, [{"limits": {"cpu": "1", "memory": "1Gi"}}], "Burstable"),
    (None, [{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
    (None, [{}], "BestEffort"),
])
def test_qos_class_goes_by_pod_level_resources_where_set(resources: dict | None,
                                                        containers: list[dict],
                                                        expected: str) -> None:
    assert qos_class(pod(resources, *containers)) == expected
