"""How long a pod's containers get between SIGTERM and SIGKILL, by Kubernetes' rules."""

from __future__ import annotations

from peapod.api import Pod, parse_object
from peapod.kubelet.termination import grace_seconds


def make_pod(*, spec_grace: int = 30, deletion_grace: int | None = None) -> Pod:
    pod = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                        "spec": {"terminationGracePeriodSeconds": spec_grace,
                                 "containers": [{"name": "c", "image": "busybox:1"}]}})
    assert isinstance(pod, Pod)
    pod.metadata.deletion_grace_period_seconds = deletion_grace
    return pod


def test_a_graceful_delete_gets_the_deletion_grace_period_else_the_spec():
    assert grace_seconds(make_pod(deletion_grace=15), object_gone=False) == 15
    assert grace_seconds(make_pod(spec_grace=45), object_gone=False) == 45


def test_a_pod_whose_object_is_gone_does_not_wait_its_specs_grace_period():
    # force-deleted (--grace-period=0 --force) or an orphan: Kubernetes' one-second override,
    # raised to the two seconds every container gets between SIGTERM and SIGKILL
    assert grace_seconds(make_pod(spec_grace=30), object_gone=True) == 2
    assert grace_seconds(None, object_gone=True) == 2


def test_no_container_gets_less_than_two_seconds():
    assert grace_seconds(make_pod(deletion_grace=0), object_gone=False) == 2
    assert grace_seconds(make_pod(spec_grace=1), object_gone=False) == 2
