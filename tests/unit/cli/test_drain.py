"""kubectl drain's filters, messages and duration text, as pure functions."""

from __future__ import annotations

from peapod.api import Pod
from peapod.cli.drain import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    DrainError,
    Options,
    Verdict,
    go_duration,
    grouped,
    verdict,
)


def pod(name: str, *, owner: str | None = None, empty_dir: bool = False,
        phase: str = "Running") -> Pod:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "o",
                                    "uid": "u", "controller": True}]
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if empty_dir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    return Pod.model_validate({"metadata": meta, "spec": spec, "status": {"phase": phase}})


def test_filters_in_kubectls_order():
    plain = Options()
    assert verdict(pod("a", owner="ReplicaSet"), plain).delete
    assert verdict(pod("d", owner="DaemonSet"), plain).message == DAEMONSET_FATAL
    ds = verdict(pod("d", owner="DaemonSet"), Options(ignore_daemonsets=True))
    assert (ds.delete, ds.reason, ds.message) == (False, "warning", DAEMONSET_WARNING)
    orphan = pod("d", owner="DaemonSet")
    assert verdict(orphan, plain, daemonset_exists=False).reason == "error"
    assert verdict(orphan, Options(force=True), daemonset_exists=False).delete
    assert verdict(pod("e", owner="ReplicaSet", empty_dir=True), plain).message == \
        LOCAL_STORAGE_FATAL
    # kubectl's quirk kept: a later filter's okay replaces the local-storage warning
    assert verdict(pod("e", owner="ReplicaSet", empty_dir=True),
                   Options(delete_emptydir_data=True)) == verdict(pod("a", owner="ReplicaSet"),
                                                                  plain)
    assert verdict(pod("b"), plain).message == UNMANAGED_FATAL
    assert verdict(pod("b"), Options(force=True)).message == UNMANAGED_WARNING
    # an emptyDir pod nobody owns: the first refusal (local storage) is the one reported
    assert verdict(pod("b", empty_dir=True), plain).message == LOCAL_STORAGE_FATAL
    assert verdict(pod("f", phase="Succeeded", empty_dir=True), plain).delete  # finished: goes
    # a mirror pod (its kubelet runs it from a file) is skipped without a word, even forced
    mirror = pod("m-node", empty_dir=True)
    mirror.metadata.annotations = {"kubernetes.io/config.mirror": "hash"}
    assert verdict(mirror, Options(force=True, delete_emptydir_data=True)) == \
        Verdict(False, "", "")


def test_messages_group_pods_by_reason():
    plain = Options()
    judged = [(p, verdict(p, plain)) for p in (pod("b1"), pod("d", owner="DaemonSet"), pod("b2"))]
    assert grouped(judged, "error") == [f"{DAEMONSET_FATAL}: default/d",
                                        f"{UNMANAGED_FATAL}: default/b1, default/b2"]
    error = DrainError("n1", ["cannot delete x: default/a", "cannot delete y: default/b"],
                       final=["cannot delete x: default/a", "cannot delete y: default/b"])
    assert error.line().splitlines() == [
        'error: unable to drain node "n1" due to error:[cannot delete x: default/a, cannot '
        'delete y: default/b], continuing command...', "There are pending nodes to be drained:",
        " n1", "cannot delete x: default/a", "cannot delete y: default/b"]


def test_go_duration():
    assert [go_duration(s) for s in (5, 90, 300, 3600, 1.5)] == ["5s", "1m30s", "5m0s",
                                                                 "1h0m0s", "1.5s"]
