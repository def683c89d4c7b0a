"""Which ephemeral-storage limit evicts a pod, in Kubernetes' order and words."""

from __future__ import annotations

from peapod.api import Pod
from peapod.kubelet.storage import eviction, limits


def pod(*containers: tuple[str, str | None]) -> Pod:
    return Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": name, "image": "busybox",
         **({"resources": {"limits": {"ephemeral-storage": size}}} if size else {})}
        for name, size in containers]}})


MI = 2**20


def test_no_limit_never_evicts():
    assert limits(pod(("a", None))) == {}
    assert eviction(pod(("a", None)), containers={"a": 10**12}, empty_dirs=10**12) is None


def test_the_pod_sum_comes_first_then_each_container():
    p = pod(("a", "1Mi"), ("b", "2Mi"), ("c", None))
    assert limits(p) == {"a": MI, "b": 2 * MI}
    assert eviction(p, containers={"a": MI, "b": MI, "c": 0}, empty_dirs=0) is None
    assert eviction(p, containers={"a": MI, "b": MI}, empty_dirs=MI + 1) == (
        "Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ")
    assert eviction(p, containers={"a": MI + 1, "b": 0}, empty_dirs=0) == (
        'Container a exceeded its local ephemeral storage limit "1Mi". ')
