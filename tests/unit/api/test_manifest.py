"""Reading manifests: every input shape kubectl accepts becomes the same validated objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peapod.api import Event, Node, Pod, load_documents, parse_object
from peapod.errors import Invalid

ROOT = Path(__file__).resolve().parents[3]
DB_YML = ROOT / "examples" / "db.yml"

BLOCK = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.25
"""
FLOW = ("{apiVersion: v1, kind: Pod, metadata: {name: web},\n"
        " spec: {containers: [{name: web, image: nginx:1.25}]}}")
JSON = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                   "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}, indent=2)


def pods(text: str) -> list[Pod]:
    objects = [parse_object(doc) for doc in load_documents(text, source="test.yml")]
    assert all(isinstance(obj, Pod) for obj in objects)
    return objects  # type: ignore[return-value]


def pod_with_image(image: str, **container: Any) -> Pod:
    obj = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"containers": [{"name": "c", "image": image, **container}]}})
    assert isinstance(obj, Pod)
    return obj


def nulls_in(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls_in(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("text", [BLOCK, FLOW, JSON], ids=["yaml-block", "yaml-flow", "json"])
def test_block_yaml_flow_yaml_and_json_give_the_same_pod(text):
    [pod] = pods(text)
    assert pod.metadata.name == "web"
    assert pod.to_wire() == pods(BLOCK)[0].to_wire()


def test_multi_document_yaml_gives_one_object_per_document_and_skips_empty_ones():
    text = BLOCK + "---\n" + BLOCK.replace("name: web", "name: api") + "---\n---\n"
    assert [p.metadata.name for p in pods(text)] == ["web", "api"]


def test_kind_list_is_flattened_into_its_items():
    item = json.loads(JSON)
    listed = json.dumps({"apiVersion": "v1", "kind": "List",
                         "items": [item, {**item, "metadata": {"name": "api"}}]})
    assert [p.metadata.name for p in pods(listed)] == ["web", "api"]


def test_kind_list_in_yaml_mixes_with_plain_documents():
    text = ("apiVersion: v1\nkind: List\nitems:\n- " + FLOW + "\n---\n"
            + BLOCK.replace("name: web", "name: api"))
    assert [p.metadata.name for p in pods(text)] == ["web", "api"]


def test_a_bare_json_array_is_read_as_a_list():
    assert [p.metadata.name for p in pods(f"[{JSON}, {JSON}]")] == ["web", "web"]


def test_seed_manifest_parses_unchanged_to_the_db_pod():
    [pod] = pods(DB_YML.read_text())
    assert pod.metadata.name == "db"
    assert pod.metadata.labels == {"type": "db", "vendor": "MongoLabs"}
    [container] = pod.spec.containers
    assert container.name == "db"
    assert container.image == "mongo:3.3"
    assert container.command == ["mongod"]
    assert container.args == ["--rest", "--httpinterface"]
    assert container.image_pull_policy == "IfNotPresent"
    assert pod.spec.restart_policy == "Always"
    assert pod.status is None


def test_seed_manifest_to_wire_is_kubernetes_camel_case_json_without_nulls():
    [pod] = pods(DB_YML.read_text())
    assert pod.to_wire() == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db", "labels": {"type": "db", "vendor": "MongoLabs"}},
        "spec": {
            "containers": [{
                "name": "db", "image": "mongo:3.3", "command": ["mongod"],
                "args": ["--rest", "--httpinterface"], "imagePullPolicy": "IfNotPresent",
                # Kubernetes' defaults, stored and returned as the apiserver does
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
        },
    }


def test_to_wire_of_a_full_pod_has_camel_case_keys_kubernetes_acronyms_and_no_nulls():
    pod = Pod.model_validate({
        "metadata": {"name": "p", "namespace": "default", "resourceVersion": "3"},
        "spec": {"containers": [{"name": "c", "image": "i:1", "workingDir": "/w",
                                 "ports": [{"containerPort": 80, "hostIP": "127.0.0.1"}],
                                 "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": True}]}],
                 "volumes": [{"name": "v", "emptyDir": {}}], "nodeName": "node-a"},
        "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.88.0.2",
                   "containerStatuses": [{"name": "c", "imageID": "sha256:1", "containerID": "x",
                                          "restartCount": 2,
                                          "lastState": {"terminated": {"exitCode": 1}}}]},
    })
    wire = pod.to_wire()
    assert nulls_in(wire) == []
    assert wire["metadata"]["resourceVersion"] == "3"
    container = wire["spec"]["containers"][0]
    assert container["workingDir"] == "/w"
    assert container["ports"] == [{"containerPort": 80, "hostIP": "127.0.0.1", "protocol": "TCP"}]
    assert container["volumeMounts"] == [{"name": "v", "mountPath": "/v", "readOnly": True}]
    assert wire["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    assert wire["spec"]["nodeName"] == "node-a"
    assert {"hostIP", "podIP", "containerStatuses"} <= set(wire["status"])
    status = wire["status"]["containerStatuses"][0]
    assert status["imageID"] == "sha256:1"
    assert status["containerID"] == "x"
    assert status["restartCount"] == 2
    assert status["lastState"] == {"terminated": {"exitCode": 1}}


def test_wire_form_parses_back_to_an_equal_object():
    [pod] = pods(DB_YML.read_text())
    assert parse_object(pod.to_wire()) == pod


def test_snake_case_names_are_accepted_too():
    pod = Pod.model_validate({"metadata": {"name": "p"},
                              "spec": {"restart_policy": "Never",
                                       "containers": [{"name": "c", "image": "i"}]}})
    assert pod.spec.restart_policy == "Never"


@pytest.mark.parametrize(("image", "policy"), [
    ("mongo:3.3", "IfNotPresent"),
    ("mongo:latest", "Always"),
    ("mongo", "Always"),
    ("localhost:5000/mongo", "Always"),
    ("localhost:5000/mongo:3.3", "IfNotPresent"),
    ("docker.io/library/mongo:latest", "Always"),
    ("mongo@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy_defaults_as_kubernetes_does(image, policy):
    assert pod_with_image(image).spec.containers[0].image_pull_policy == policy


def test_an_explicit_image_pull_policy_is_kept():
    pod = pod_with_image("mongo:latest", imagePullPolicy="Never")
    assert pod.spec.containers[0].image_pull_policy == "Never"


def test_node_and_event_manifests_parse_to_their_kinds():
    node = parse_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
                         "status": {"allocatable": {"cpu": "2", "memory": "2Gi"},
                                    "nodeInfo": {"machineID": "m1"}}})
    event = parse_object({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "db.1"},
                          "involvedObject": {"kind": "Pod", "name": "db"},
                          "reason": "Started", "message": "Started container db"})
    assert isinstance(node, Node)
    assert node.status is not None and node.status.node_info is not None
    assert node.status.node_info.machine_id == "m1"
    assert isinstance(event, Event)
    assert event.to_wire()["involvedObject"] == {"kind": "Pod", "name": "db"}
    assert event.type == "Normal"


@pytest.mark.parametrize("text", ["", "\n", "---\n", "# only a comment\n", "null"])
def test_a_file_with_no_objects_is_refused(text):
    with pytest.raises(Invalid, match=r"^test\.yml: no objects passed to apply$"):
        load_documents(text, source="test.yml")


@pytest.mark.parametrize("text", ["kind: Pod\nmetadata: [\n", "a: b\n c: d\n  - e"])
def test_unparsable_yaml_is_refused_with_the_file_and_the_line(text):
    with pytest.raises(Invalid, match=r"^test\.yml: cannot parse: yaml: line \d+, column \d+: "
                       r"[^\n^]+$"):  # what and where; no quoted source line, no caret
        load_documents(text, source="test.yml")


def test_the_parse_error_names_the_line_as_kubectl_does():
    with pytest.raises(Invalid) as info:
        load_documents("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n spec: [\n",
                       source="pod.yml")
    assert info.value.message == ("pod.yml: cannot parse: yaml: line 5, column 2: expected "
                                  "<block end>, but found '<block mapping start>'")


def test_malformed_json_is_refused_as_unparsable():
    with pytest.raises(Invalid, match=r"^test\.json: cannot parse: "):
        load_documents('{"apiVersion": "v1", "kind": ', source="test.json")


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(Invalid, match=r"^test\.yml: document 1: expected an object, got str$"):
        load_documents(BLOCK + "---\njust a string\n", source="test.yml")


def test_a_list_whose_items_are_not_objects_is_refused():
    with pytest.raises(Invalid, match=r"^test\.yml: document 0: items: expected a list of objects$"):
        load_documents("apiVersion: v1\nkind: List\nitems: [1, 2]\n", source="test.yml")
