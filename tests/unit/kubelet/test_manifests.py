"""The manifest directory (``kubelet/manifests.py``) and static pods' defaults (``api/static.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.api.static import CONFIG_HASH, CONFIG_SOURCE, mirror_of, own_uids, static_pod
from peapod.errors import Invalid
from peapod.kubelet.manifests import ManifestDir

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers: [{name: c, image: busybox:1}]
"""


def invalid_lines(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "static_pod_manifest_invalid"]


def test_pods_are_named_after_the_node_with_a_uid_of_content_node_and_file() -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    pod = static_pod(doc, node_name="pi", source="/m/web.yaml")
    meta = pod.metadata
    assert (meta.name, meta.namespace, pod.spec.node_name) == ("web-pi", "default", "pi")
    assert meta.annotations and meta.annotations[CONFIG_HASH] == meta.uid
    assert meta.annotations[CONFIG_SOURCE] == "file"
    assert static_pod(doc, node_name="pi", source="/m/web.yaml").metadata.uid == meta.uid
    others = {static_pod(doc, node_name="pi2", source="/m/web.yaml").metadata.uid,
              static_pod(doc, node_name="pi", source="/m/other.yaml").metadata.uid,
              static_pod({**doc, "metadata": {"name": "web", "labels": {"a": "b"}}},
                         node_name="pi", source="/m/web.yaml").metadata.uid}
    assert meta.uid not in others and len(others) == 3
    assert any(t.operator == "Exists" and t.effect == "NoExecute"
               for t in pod.spec.tolerations or [])


@pytest.mark.parametrize(("change", "words"), [
    ({"kind": "Namespace", "spec": {}}, "holds kind Pod, not Namespace"),
    ({"metadata": {"generateName": "web-"}}, "metadata.name: Required value"),
    ({"metadata": {"name": "web", "finalizers": ["x"]}}, "metadata.finalizers"),
    ({"metadata": {"name": "x" * 251}}, "metadata.name"),
    ({"spec": {"containers": [{"name": "c", "image": "b",
                               "envFrom": [{"secretRef": {"name": "s"}}]}]}},
     "may not reference Secrets"),
])
def test_what_a_static_pod_may_not_be(change: dict, words: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}, **change}
    with pytest.raises(Invalid, match=words):
        static_pod(doc, node_name="pi", source="/m/web.yaml")


def test_hidden_and_other_files_are_ignored_and_changes_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POD % "a")
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},'
                                     ' "spec": {"containers": [{"name": "c", "image": "x"}]}}')
    (tmp_path / ".c.yaml").write_text(POD % "c")
    (tmp_path / "d.txt").write_text(POD % "d")
    (tmp_path / "e.yml").mkdir()
    manifests = ManifestDir(tmp_path, node_name="pi")
    first = manifests.read()
    assert first is not None and sorted(first) == ["default/a-pi", "default/b-pi"]
    assert manifests.read() is None  # nothing changed: nothing re-read
    assert manifests.current() == first  # what a restarted watch applies first
    (tmp_path / "b.json").unlink()
    assert sorted(manifests.read() or {}) == ["default/a-pi"]


def test_a_bad_manifest_is_one_line_and_keeps_what_ran(tmp_path: Path) -> None:
    manifests = ManifestDir(tmp_path, node_name="pi")
    (tmp_path / "a.yaml").write_text(POD % "a")
    uid = (manifests.read() or {})["default/a-pi"].metadata.uid
    with capture_logs() as logs:
        (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a")
        os.utime(tmp_path / "a.yaml", ns=(1, 1))  # a new stamp even within the same tick
        (tmp_path / "b.yaml").write_text(POD % "a")  # the same pod name as a.yaml's
        for _ in range(3):
            assert manifests.read() is None  # the pods are the same: the last good a.yaml
        (tmp_path / "b.yaml").write_text(POD % "b")
        pods = manifests.read()
    assert pods is not None and sorted(pods) == ["default/a-pi", "default/b-pi"]
    assert pods["default/a-pi"].metadata.uid == uid
    lines = invalid_lines(logs)
    assert [Path(e["file"]).name for e in lines] == ["a.yaml", "b.yaml"]
    assert "cannot parse" in lines[0]["error"] and "already defined" in lines[1]["error"]


def test_a_missing_directory_is_one_line_and_no_pods(tmp_path: Path) -> None:
    manifests = ManifestDir(tmp_path / "none", node_name="pi")
    with capture_logs() as logs:
        assert manifests.read() == {}
        assert manifests.read() is None
    assert [e["event"] for e in logs] == ["static_pod_path_unreadable"]


def test_describe_shows_a_mirror_pods_events_under_the_static_pods_uid() -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    static = static_pod(doc, node_name="pi", source="/m/web.yaml")
    mirror = Pod.model_validate({**mirror_of(static, node_uid="n"),
                                 "metadata": {**mirror_of(static, node_uid="n")["metadata"],
                                              "uid": "mirror-uid"}})
    assert own_uids(mirror) == {None, "mirror-uid", static.metadata.uid}
    assert own_uids(static) == {None, static.metadata.uid}
