"""The kubelet's resource admission (kubelet/admit.py): Kubernetes' order, units and words."""

from __future__ import annotations

from peapod.api import Pod
from peapod.kubelet.admit import shortage


def pod(name: str, **requests: str) -> Pod:
    return Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "uid": f"u-{name}"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1",
                                 "resources": {"requests": requests, "limits": {
                                     k: v for k, v in requests.items() if "/" in k}}}]}})


NODE = {"cpu": 2000, "memory": 1 << 30, "ephemeral-storage": 10 << 30, "example.com/dongle": 2}


def test_a_pod_that_fits_beside_the_others_is_admitted():
    assert shortage(pod("a", cpu="1"), [pod("b", cpu="1")], NODE) is None
    assert shortage(pod("a"), [pod("b", cpu="2")], NODE) is None  # it asks for nothing


def test_the_first_resource_short_is_named_in_kubernetes_order_and_units():
    found = shortage(pod("a", cpu="1500m", memory="2Gi"), [pod("b", cpu="1")], NODE)
    assert found is not None and (found.reason, found.message) == (
        "OutOfcpu", "Node didn't have enough resource: cpu, requested: 1500, used: 1000, "
                    "capacity: 2000")
    found = shortage(pod("a", **{"ephemeral-storage": "6Gi"}),
                     [pod("b", **{"ephemeral-storage": "5Gi"})], NODE)
    assert found is not None and found.reason == "OutOfephemeral-storage"
    assert found.message.endswith(f"requested: {6 << 30}, used: {5 << 30}, capacity: {10 << 30}")
    found = shortage(pod("a", **{"example.com/dongle": "1"}),
                     [pod("b", **{"example.com/dongle": "2"})], NODE)
    assert found is not None and found.reason == "OutOfexample.com/dongle"
    found = shortage(pod("a", **{"example.com/other": "1"}), [], NODE)  # not advertised
    assert found is not None and found.message.endswith("requested: 1, used: 0, capacity: 0")
