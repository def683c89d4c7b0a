"""The node's last-known pods on disk: written only when they change, read back at an offline boot."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.kubelet.lastknown import LastKnown


def a_pod(name: str, *, version: str = "7", command: str = "sleep 3600") -> Pod:
    return Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}",
                     "resourceVersion": version},
        "spec": {"nodeName": "pi", "containers": [
            {"name": "main", "image": "localhost/peapod-busybox:latest",
             "command": ["sh", "-c", command]}]},
        "status": {"phase": "Running", "podIP": "10.88.0.7"}})


def test_written_only_when_the_pods_their_spec_or_phase_change(tmp_path: Path):
    store = LastKnown(tmp_path)
    assert store.save([(a_pod("web"), "Running")])
    assert (tmp_path / "pods.json").stat().st_mode & 0o777 == 0o600
    # a status detail or a new resourceVersion (a status write) is not a change on disk
    assert not store.save([(a_pod("web", version="8"), "Running")])
    assert store.save([(a_pod("web"), "Succeeded")])
    assert store.save([(a_pod("web", command="sleep 1"), "Succeeded")])
    assert store.save([])
    assert not store.save([])
    assert list(tmp_path.iterdir()) == [tmp_path / "pods.json"]  # no temporary file left


def test_an_offline_boot_reads_back_the_pods_that_had_not_finished(tmp_path: Path):
    LastKnown(tmp_path).save([(a_pod("web"), "Running"), (a_pod("job"), "Succeeded"),
                              (a_pod("new"), None), (a_pod("bad"), "Failed")])
    store = LastKnown(tmp_path)
    pods = store.load()
    assert [(p.metadata.name, p.metadata.uid, p.spec.containers[0].command) for p in pods] == [
        ("web", "u-web", ["sh", "-c", "sleep 3600"]), ("new", "u-new", ["sh", "-c", "sleep 3600"])]
    assert pods[0].status is not None and pods[0].status.pod_ip is None  # only the phase is kept
    # what was read is what is on disk: the same pods again write nothing
    assert not store.save([(a_pod("web"), "Running"), (a_pod("job"), "Succeeded"),
                           (a_pod("new"), None), (a_pod("bad"), "Failed")])


def test_a_missing_or_damaged_file_starts_nothing_and_says_why(tmp_path: Path):
    assert LastKnown(tmp_path).load() == []
    (tmp_path / "pods.json").write_text('{"pods": [{"kind": "Pod"')
    with capture_logs() as logs:
        assert LastKnown(tmp_path).load() == []
    assert [e["event"] for e in logs] == ["last_known_pods_unreadable"]
    (tmp_path / "pods.json").write_text('{"pods": [{"kind": "Pod", "spec": 5}]}')
    with capture_logs() as logs:
        assert LastKnown(tmp_path).load() == []
    assert [e["event"] for e in logs] == ["last_known_pod_skipped"]


def test_the_pull_back_off_of_the_pods_is_kept_and_written_only_when_it_changes(tmp_path: Path):
    from peapod.kubelet.backoff import Entry

    store = LastKnown(tmp_path)
    web = a_pod("web")
    backoff = {"u-web_localhost/x:1": Entry(delay=20.0, last_update=1000.5),
               "u-gone_localhost/x:1": Entry(delay=10.0, last_update=999.0)}  # a pod not kept
    assert store.save([(web, "Pending")], backoff)
    assert not store.save([(web, "Pending")], dict(backoff))  # unchanged: nothing written
    assert LastKnown(tmp_path).load_pull_backoff() == {
        "u-web_localhost/x:1": Entry(delay=20.0, last_update=1000.5)}
    assert store.save([(web, "Pending")], {})  # the pull succeeded: the entry goes
    assert LastKnown(tmp_path).load_pull_backoff() == {}
    (tmp_path / "pods.json").write_text('{"pods": [], "pullBackOff": {"k": {"delay": "x"}}}')
    assert LastKnown(tmp_path).load_pull_backoff() == {}  # a damaged entry is skipped
