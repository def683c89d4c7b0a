"""Invalid manifests are refused with Invalid, one ``path: problem`` per mistake."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from peapod.api import Pod, parse_object
from peapod.api.resources import extended_requests, node_extended_problems
from peapod.api.validation import format_location, pydantic_problems, raise_if_problems
from peapod.errors import Invalid

Doc = dict[str, Any]

SEED: Doc = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "db", "labels": {"type": "db"}},
    "spec": {"containers": [{"name": "db", "image": "mongo:3.3"}]},
}


def refusal(change: Callable[[Doc], object]) -> str:
    """The message Invalid carries for the seed pod after ``change``."""
    doc = copy.deepcopy(SEED)
    change(doc)
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    assert info.value.code == "Invalid"
    return info.value.message


def container(doc: Doc, index: int = 0) -> Doc:
    return doc["spec"]["containers"][index]


def with_volumes(*volumes: Doc, mounts: list[Doc] | None = None) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["spec"]["volumes"] = list(volumes)
        if mounts is not None:
            container(doc)["volumeMounts"] = mounts
    return change


def with_resources(**resources: Doc) -> Callable[[Doc], None]:
    return lambda doc: container(doc).update(resources=resources)


def test_the_seed_pod_is_valid():
    assert isinstance(parse_object(copy.deepcopy(SEED)), Pod)


def test_unknown_field_is_refused_with_its_path():
    message = refusal(lambda d: container(d).update(imagee="mongo"))
    assert message == "Pod \"db\" is invalid: spec.containers[0].imagee: unknown field"


def test_unknown_top_level_and_metadata_fields_are_refused_too():
    assert refusal(lambda d: d.update(specs={})).endswith("specs: unknown field")
    assert refusal(lambda d: d["metadata"].update(lables={})).endswith("metadata.lables: unknown field")


def test_duplicate_container_names_are_refused_with_their_path():
    message = refusal(lambda d: d["spec"]["containers"].append({"name": "db", "image": "busybox"}))
    assert message == "Pod \"db\" is invalid: spec.containers[1].name: duplicate name 'db'"


def test_a_pod_without_containers_is_refused():
    assert refusal(lambda d: d["spec"].update(containers=[])) == (
        "Pod \"db\" is invalid: spec.containers: required value: a pod needs at least one container")
    assert refusal(lambda d: d["spec"].pop("containers")) == (
        "Pod \"db\" is invalid: spec.containers: required value")


def test_a_container_without_image_is_refused():
    problem = "spec.containers[0].image: required value"
    assert refusal(lambda d: container(d).update(image="")).endswith(problem)
    assert refusal(lambda d: container(d).pop("image")).endswith(problem)


def test_a_pod_without_name_is_refused():
    assert refusal(lambda d: d["metadata"].pop("name")) == (
        'Pod "" is invalid: metadata.name: required value: name or generateName is required')


@pytest.mark.parametrize("name", ["DB", "my_db", "-db", "db-", "db pod", "a" * 254, ""])
def test_pod_names_that_are_not_dns1123_subdomains_are_refused(name):
    message = refusal(lambda d: d["metadata"].update(name=name))
    if name:
        assert f"metadata.name: invalid name {name!r}: a lowercase RFC 1123 subdomain" in message
    else:
        assert message.endswith("metadata.name: required value: name or generateName is required")


def test_a_too_long_pod_name_is_told_the_length_limit():
    assert "at most 253 characters" in refusal(lambda d: d["metadata"].update(name="a" * 254))


@pytest.mark.parametrize("name", ["db", "db-1", "a.b.c", "1db", "a" * 253])
def test_dns1123_subdomain_pod_names_are_accepted(name):
    doc = copy.deepcopy(SEED)
    doc["metadata"]["name"] = name
    assert parse_object(doc).metadata.name == name


@pytest.mark.parametrize("name", ["DB", "my_db", "a.b", "a" * 64])
def test_container_names_that_are_not_dns1123_labels_are_refused(name):
    message = refusal(lambda d: container(d).update(name=name))
    assert f"spec.containers[0].name: invalid name {name!r}: a lowercase RFC 1123 label" in message
    assert "at most 63 characters" in message


def test_a_namespace_that_is_not_a_dns1123_label_is_refused():
    assert "metadata.namespace: invalid name 'Prod_1'" in refusal(
        lambda d: d["metadata"].update(namespace="Prod_1"))


@pytest.mark.parametrize(("labels", "problem"), [
    ({"Bad Key!": "x"}, "metadata.labels: invalid label key 'Bad Key!': name part must consist of"),
    ({"a" * 64: "x"}, "name part must consist of"),
    ({"": "x"}, "metadata.labels: invalid label key ''"),
    ({"Example.com/app": "x"}, "invalid label key 'Example.com/app': prefix part must be"),
    ({"/app": "x"}, "invalid label key '/app': prefix part must be"),
    ({"app": "bad value!"}, "metadata.labels.app: invalid label value 'bad value!'"),
    ({"app": "v" * 64}, "metadata.labels.app: invalid label value"),
])
def test_malformed_label_keys_and_values_are_refused(labels, problem):
    assert problem in refusal(lambda d: d["metadata"].update(labels=labels))


@pytest.mark.parametrize(("annotations", "problem"), [
    ({"Bad Key!": "x"}, "metadata.annotations: invalid annotation key 'Bad Key!': name part"),
    ({"Example.com/a": "x"}, "invalid annotation key 'Example.com/a': prefix part must be"),
    ({"note": "x" * (256 * 1024)}, "metadata.annotations: Too long: must have at most 262144 bytes"),
])
def test_malformed_or_oversized_annotations_are_refused_as_kubernetes_does(annotations, problem):
    assert problem in refusal(lambda d: d["metadata"].update(annotations=annotations))


def test_annotations_may_hold_any_text_up_to_the_limit():
    doc = copy.deepcopy(SEED)
    notes = {"example.com/note": "$(rm -rf /) `id`\n" * 100}
    notes["big"] = "x" * (256 * 1024 - 3 - 16 - len(notes["example.com/note"]))
    doc["metadata"]["annotations"] = notes
    assert parse_object(doc).metadata.annotations == notes


def test_well_formed_labels_are_accepted():
    doc = copy.deepcopy(SEED)
    labels = {"app.kubernetes.io/name": "db", "tier": "", "Vendor_1.x-y": "MongoLabs_3.3-a"}
    doc["metadata"]["labels"] = labels
    assert parse_object(doc).metadata.labels == labels


@pytest.mark.parametrize(("value", "problem"), [
    ("100x", "quantities must match the regular expression"),
    ("-1", "quantity '-1' must not be negative"),
])
def test_bad_quantities_are_refused_with_their_path(value, problem):
    message = refusal(with_resources(requests={"cpu": value}))
    assert f"spec.containers[0].resources.requests.cpu: {problem}" in message


def test_a_bad_limit_is_reported_once_and_not_compared_with_the_request():
    message = refusal(with_resources(requests={"memory": "64Mi"}, limits={"memory": "lots"}))
    assert message == ("Pod \"db\" is invalid: spec.containers[0].resources.limits.memory: quantities "
                       "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', "
                       "got 'lots'")


def test_requests_greater_than_limits_are_refused():
    message = refusal(with_resources(requests={"cpu": "2"}, limits={"cpu": "1500m"}))
    assert message == ("Pod \"db\" is invalid: spec.containers[0].resources.requests.cpu: "
                       "must be less than or equal to cpu limit of 1500m")


def test_requests_equal_to_limits_in_other_units_are_accepted():
    doc = copy.deepcopy(SEED)
    with_resources(requests={"cpu": "0.5", "memory": "1Gi"}, limits={"cpu": "500m", "memory": "1024Mi"})(doc)
    assert isinstance(parse_object(doc), Pod)


def test_unsupported_resource_names_are_refused():
    message = refusal(with_resources(limits={"hugepages-2Mi": "2Mi"}))
    assert message == ("Pod \"db\" is invalid: spec.containers[0].resources.limits.hugepages-2Mi: "
                       "unsupported resource name, supported: cpu, memory, ephemeral-storage "
                       "and extended resources (example.com/dongle)")


def test_extended_resources_are_checked_in_kubernetes_words():
    doc = copy.deepcopy(SEED)
    with_resources(limits={"example.com/dongle": "2"})(doc)
    spec = parse_object(doc).spec  # type: ignore[union-attr]
    assert extended_requests(spec) == {"example.com/dongle": 2}  # the limit is the request
    where = "spec.containers[0].resources"
    assert refusal(with_resources(requests={"example.com/dongle": "1"})).endswith(
        f"{where}.limits: Required value: Limit must be set for non overcommitable resources")
    assert refusal(with_resources(requests={"example.com/dongle": "1"},
                                  limits={"example.com/dongle": "2"})).endswith(
        f'{where}.requests: Invalid value: "1": must be equal to example.com/dongle limit of 2')
    assert refusal(with_resources(limits={"example.com/dongle": "500m"})).endswith(
        f'{where}.limits[example.com/dongle]: Invalid value: "500m": must be an integer')
    assert refusal(with_resources(limits={"requests.example.com/x": "1"})).endswith(
        f'{where}.limits[requests.example.com/x]: Invalid value: "requests.example.com/x": '
        "doesn't follow extended resource name standard")
    assert "prefix part a lowercase RFC 1123 subdomain" in refusal(
        with_resources(limits={"Example.com/x": "1"}))
    assert "peapod counts only extended resources" in refusal(
        with_resources(limits={"kubernetes.io/x": "1"}))


def test_extended_requests_add_up_as_kubernetes_counts_them():
    def box(name: str, dongles: int, **fields: object) -> Doc:
        return {"name": name, "image": "busybox:1", **fields,
                "resources": {"limits": {"example.com/dongle": str(dongles)}}}

    doc = copy.deepcopy(SEED)
    doc["spec"]["containers"] = [box("a", 1), box("b", 2)]
    doc["spec"]["initContainers"] = [box("side", 1, restartPolicy="Always"), box("init", 5)]
    spec = parse_object(doc).spec  # type: ignore[union-attr]
    # the app containers and the sidecar: 4; the init container beside the sidecar: 6
    assert extended_requests(spec) == {"example.com/dongle": 6}
    assert list(node_extended_problems({"example.com/dongle": "2"})) == []
    assert list(node_extended_problems({"dongle": "1", "example.com/x": "1.5"})) == [
        'extended resource dongle: Invalid value: "dongle": doesn\'t follow extended resource '
        "name standard",
        'extended resource example.com/x: Invalid value: "1.5": must be an integer']


def test_a_mount_naming_an_undeclared_volume_is_refused():
    message = refusal(with_volumes(mounts=[{"name": "data", "mountPath": "/data/db"}]))
    assert message == ("Pod \"db\" is invalid: spec.containers[0].volumeMounts[0].name: "
                       "volume 'data' not found in spec.volumes")


def test_a_relative_mount_path_is_refused():
    message = refusal(with_volumes({"name": "data", "emptyDir": {}},
                                   mounts=[{"name": "data", "mountPath": "data/db"}]))
    assert message == ("Pod \"db\" is invalid: spec.containers[0].volumeMounts[0].mountPath: "
                       "must be an absolute path")


def test_two_mounts_on_the_same_path_are_refused():
    mounts = [{"name": "a", "mountPath": "/d"}, {"name": "b", "mountPath": "/d"}]
    message = refusal(with_volumes({"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}},
                                   mounts=mounts))
    assert message.endswith("spec.containers[0].volumeMounts[1].mountPath: duplicate mount path '/d'")


@pytest.mark.parametrize("volume", [
    {"name": "data", "emptyDir": {}, "hostPath": {"path": "/srv/data"}},
    {"name": "data"},
], ids=["two-sources", "no-source"])
def test_a_volume_needs_exactly_one_source(volume):
    assert refusal(with_volumes(volume)) == (
        "Pod \"db\" is invalid: spec.volumes[0]: must specify exactly one of emptyDir, hostPath, "
        "configMap, secret, projected, downwardAPI, persistentVolumeClaim, image")


def test_a_relative_host_path_is_refused():
    assert refusal(with_volumes({"name": "data", "hostPath": {"path": "srv/data"}})) == (
        "Pod \"db\" is invalid: spec.volumes[0].hostPath.path: must be an absolute path")


def test_duplicate_volume_names_and_bad_size_limits_are_refused():
    message = refusal(with_volumes({"name": "data", "emptyDir": {"sizeLimit": "1x"}},
                                   {"name": "data", "emptyDir": {}}))
    assert "spec.volumes[0].emptyDir.sizeLimit: quantities must match" in message
    assert "spec.volumes[1].name: duplicate name 'data'" in message


def test_a_wrong_api_version_is_refused():
    assert refusal(lambda d: d.update(apiVersion="apps/v1")) == (
        "Pod \"db\" is invalid: apiVersion: unsupported version 'apps/v1' for kind Pod, expected 'v1'")
    assert "apiVersion: unsupported version None" in refusal(lambda d: d.pop("apiVersion"))


def test_an_unsupported_kind_is_refused_with_the_supported_ones():
    assert refusal(lambda d: d.update(kind="StatefulSet")) == (
        "StatefulSet \"db\" is invalid: kind: unsupported kind 'StatefulSet', "
        "supported kinds: ConfigMap, CronJob, DaemonSet, Deployment, Event, Job, Namespace, Node, "
        "PersistentVolume, PersistentVolumeClaim, Pod, PriorityClass, ReplicaSet, Secret")


def test_a_missing_kind_is_refused():
    assert refusal(lambda d: d.pop("kind")) == 'object "db" is invalid: kind: required value'


def test_an_invalid_restart_policy_is_refused_with_the_allowed_values():
    assert refusal(lambda d: d["spec"].update(restartPolicy="Sometimes")) == (
        "Pod \"db\" is invalid: spec.restartPolicy: unsupported value 'Sometimes', "
        "supported values: 'Always', 'OnFailure' or 'Never'")


def test_out_of_range_ports_and_wrong_types_name_their_path():
    assert ("spec.containers[0].ports[0].containerPort: Invalid value: 0: must be greater than "
            "or equal to 1") in refusal(lambda d: container(d).update(ports=[{"containerPort": 0}]))
    assert 'spec.containers[0].command: invalid type: got "string", expected "array"' in (
        refusal(lambda d: container(d).update(command="mongod --rest")))
    assert ('spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: invalid '
            'type: got "array", expected "map"') in refusal(lambda d: d["spec"].update(affinity={
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}))


def test_an_environment_variable_name_with_equals_is_refused():
    assert refusal(lambda d: container(d).update(env=[{"name": "A=B", "value": "c"}])).endswith(
        "spec.containers[0].env[0].name: invalid environment variable name 'A=B'")


def test_every_problem_is_reported_in_one_message():
    def change(doc: Doc) -> None:
        doc["metadata"]["name"] = "Bad_Name"
        doc["spec"]["containers"].append({"name": "db", "image": "x",
                                          "volumeMounts": [{"name": "nope", "mountPath": "/x"}]})
    doc = copy.deepcopy(SEED)
    change(doc)
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    paths = ["metadata.name", "spec.containers[1].name", "spec.containers[1].volumeMounts[0].name"]
    assert [p.split(":")[0] for p in info.value.causes] == paths
    # apimachinery's NewInvalid: several causes are one aggregate, [a, b, c]
    assert info.value.message == f'Pod "Bad_Name" is invalid: [{", ".join(info.value.causes)}]'
    assert (info.value.kind, info.value.name) == ("Pod", "Bad_Name")


def test_node_capacity_quantities_are_checked():
    with pytest.raises(Invalid,
                       match=re.escape('Node "node-a" is invalid: status.capacity.cpu: quantities')):
        parse_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
                      "status": {"capacity": {"cpu": "two"}}})


def test_node_names_may_not_contain_uppercase():
    with pytest.raises(Invalid, match=re.escape("metadata.name: invalid name 'Node-A'")):
        parse_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "Node-A"}})


@pytest.mark.parametrize(("loc", "path"), [
    (("spec", "containers", 1, "name"), "spec.containers[1].name"),
    (("metadata",), "metadata"),
    ((0, "a"), "[0].a"),
    ((), "<root>"),
])
def test_format_location_writes_paths_as_kubernetes_does(loc, path):
    assert format_location(loc) == path


def test_pydantic_problems_drop_validator_names_from_paths():
    with pytest.raises(ValidationError) as info:
        Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": 3}]}})
    assert pydantic_problems(info.value) == [
        'spec.containers[0].image: invalid type: got "integer", expected "string"']


def test_raise_if_problems_aggregates_problems_and_is_silent_without_any():
    raise_if_problems([], kind="Pod", name="p")
    with pytest.raises(Invalid, match=r'^Pod "p" is invalid: \[a: x, b: y\]$'):
        raise_if_problems(["a: x", "b: y"], kind="Pod", name="p")


def test_init_containers_share_the_names_of_app_containers_and_only_they_take_restart_policy():
    def same_name(doc: Doc) -> None:
        doc["spec"]["initContainers"] = [{"name": "db", "image": "busybox:1"}]
    assert refusal(same_name).endswith("spec.containers[0].name: duplicate name 'db'")
    assert refusal(lambda doc: container(doc).update(restartPolicy="Always")).endswith(
        "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers")

    def bad_init(doc: Doc) -> None:
        doc["spec"]["initContainers"] = [{"name": "Init", "image": " ", "restartPolicy": "Never"}]
    message = refusal(bad_init)
    assert "spec.initContainers[0].restartPolicy: unsupported value 'Never'" in message
    doc = copy.deepcopy(SEED)
    doc["spec"]["initContainers"] = [{"name": "proxy", "image": "busybox:1",
                                      "restartPolicy": "Always"}]
    pod = parse_object(doc)
    assert isinstance(pod, Pod) and pod.spec.init_containers
    assert pod.spec.init_containers[0].image_pull_policy == "IfNotPresent"


def test_probes_and_hooks_are_checked_as_kubernetes_does():
    def probes(**fields: Any) -> Callable[[Doc], None]:
        return lambda doc: container(doc).update(fields)

    assert refusal(probes(livenessProbe={})).endswith(
        "spec.containers[0].livenessProbe: Required value: must specify a handler type")
    both = refusal(probes(readinessProbe={"exec": {"command": ["true"]},
                                          "tcpSocket": {"port": 80}}))
    assert both.endswith("spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not "
                         "specify more than 1 handler type")
    assert refusal(probes(startupProbe={"tcpSocket": {"port": 80}, "successThreshold": 2})
                   ).endswith("spec.containers[0].startupProbe.successThreshold: Invalid "
                              "value: 2: must be 1")
    assert "must not be set for readinessProbes" in refusal(probes(readinessProbe={
        "httpGet": {"port": 80}, "terminationGracePeriodSeconds": 5}))
    assert "httpGet.port: Invalid value: 0" in refusal(probes(livenessProbe={
        "httpGet": {"port": 0}}))
    assert "httpGet.port: Invalid value: 'Not_A_Name'" in refusal(probes(livenessProbe={
        "httpGet": {"port": "Not_A_Name"}}))
    assert refusal(probes(livenessProbe={"grpc": {"port": 0}})).endswith(
        "spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and "
        "65535, inclusive")
    doc = copy.deepcopy(SEED)
    container(doc)["livenessProbe"] = {"grpc": {"port": 9090, "service": "db"}}
    grpc = parse_object(doc).spec.containers[0].liveness_probe.grpc  # type: ignore[union-attr]
    assert grpc is not None and (grpc.port, grpc.service) == (9090, "db")
    assert "exec.command: Required value" in refusal(probes(lifecycle={"postStart": {
        "exec": {}}}))
    assert refusal(probes(lifecycle={"preStop": {"sleep": {"seconds": 30}}})).endswith(
        "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 30: must be "
        "non-negative and less than terminationGracePeriodSeconds (30)")
    assert "lifecycle.preStop.tcpSocket: unknown field" in refusal(probes(lifecycle={
        "preStop": {"tcpSocket": {"port": 80}}}))

    def init_probe(doc: Doc) -> None:
        doc["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1",
                                          "livenessProbe": {"tcpSocket": {"port": 80}}}]
    assert refusal(init_probe).endswith("spec.initContainers[0].livenessProbe: Forbidden: may "
                                        "not be set for init containers without "
                                        "restartPolicy=Always")


def test_probe_defaults_are_kubernetes_defaults():
    doc = copy.deepcopy(SEED)
    container(doc)["livenessProbe"] = {"httpGet": {"port": 8080}}
    pod = parse_object(doc)
    assert isinstance(pod, Pod)
    assert pod.to_wire()["spec"]["containers"][0]["livenessProbe"] == {
        "httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1,
        "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


@pytest.mark.parametrize("fields", [{"stdin": True, "stdinOnce": True},
                                    {"stdin": True, "tty": True},
                                    {"stdin": True, "stdinOnce": True, "tty": True},
                                    {"tty": True}])
def test_stdin_and_tty_that_podman_can_honour_are_accepted(fields):
    doc = copy.deepcopy(SEED)
    container(doc).update(fields)
    spec = parse_object(doc).spec.containers[0]
    assert (spec.stdin, spec.stdin_once, spec.tty) == tuple(
        fields.get(k) for k in ("stdin", "stdinOnce", "tty"))


def test_stdin_kept_open_without_a_tty_is_refused_naming_stdin_once():
    message = refusal(lambda d: container(d).update(stdin=True))
    assert "spec.containers[0].stdinOnce: Unsupported value: false: without a tty, podman " \
           "closes a container's stdin when the first attach ends" in message


def test_image_volumes_default_their_pull_policy_as_container_images_do():
    def pod_with(reference: str, **source: str) -> Pod:
        doc = copy.deepcopy(SEED)
        with_volumes({"name": "v", "image": {"reference": reference, **source}})(doc)
        pod = parse_object(doc)
        assert isinstance(pod, Pod)
        return pod

    policies = {ref: pod_with(ref).spec.volumes[0].image.pull_policy  # type: ignore
                for ref in ("quay.io/crio/artifact:v2", "artifact", "artifact:latest",
                            "registry:5000/a@sha256:" + "0" * 64)}
    assert policies == {"quay.io/crio/artifact:v2": "IfNotPresent", "artifact": "Always",
                        "artifact:latest": "Always",
                        "registry:5000/a@sha256:" + "0" * 64: "IfNotPresent"}
    assert pod_with("artifact", pullPolicy="Never").spec.volumes[0].image.pull_policy == "Never"  # type: ignore


def test_image_volumes_need_a_reference_and_refuse_a_sub_path():
    assert refusal(with_volumes({"name": "v", "image": {}})).endswith(
        "spec.volumes[0].image.reference: Required value")
    assert refusal(with_volumes({"name": "v", "image": {"reference": "a:1"}, "emptyDir": {}})) \
        .endswith("spec.volumes[0]: must specify exactly one of emptyDir, hostPath, configMap, "
                  "secret, projected, downwardAPI, persistentVolumeClaim, image")
    message = refusal(with_volumes({"name": "v", "image": {"reference": "a:1"}}, mounts=[
        {"name": "v", "mountPath": "/v", "subPath": "dir"}]))
    assert message.endswith("spec.containers[0].volumeMounts[0].subPath: Forbidden: not "
                            "supported for image volume 'v': podman 4.3 mounts an image volume "
                            "only whole")
    assert "pullPolicy" in refusal(with_volumes({"name": "v", "image": {
        "reference": "a:1", "pullPolicy": "Sometimes"}}))


def _mounted(**mount: object) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
        container(doc)["volumeMounts"] = [{"name": "v", "mountPath": "/v", **mount}]
    return change


@pytest.mark.parametrize(("mount", "problem"), [
    ({"mountPropagation": "Bidirectional"},
     "spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: Bidirectional mount "
     "propagation is available only to privileged containers"),
    ({"mountPropagation": "Sideways"},
     "spec.containers[0].volumeMounts[0].mountPropagation: unsupported value 'Sideways'"),
    ({"recursiveReadOnly": "IfPossible"},
     "spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified "
     "when readOnly is true"),
    ({"recursiveReadOnly": "IfPossible", "readOnly": True, "mountPropagation": "HostToContainer"},
     "spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified "
     "when mountPropagation is None or not specified"),
    ({"recursiveReadOnly": "Enabled", "readOnly": True},
     'spec.containers[0].volumeMounts[0].recursiveReadOnly: Unsupported value: "Enabled": '
     "podman 4.3 cannot make a mount recursively read-only"),
])
def test_mount_modes_are_checked_as_kubernetes_checks_them(mount, problem):
    assert problem in refusal(_mounted(**mount))


@pytest.mark.parametrize("mount", [
    {"mountPropagation": "None"}, {"mountPropagation": "HostToContainer"},
    {"recursiveReadOnly": "Disabled"}, {"recursiveReadOnly": "IfPossible", "readOnly": True},
])
def test_mount_modes_podman_gives_are_accepted(mount):
    doc = copy.deepcopy(SEED)
    _mounted(**mount)(doc)
    parse_object(doc)


def test_a_privileged_container_may_propagate_both_ways():
    doc = copy.deepcopy(SEED)
    _mounted(mountPropagation="Bidirectional")(doc)
    container(doc)["securityContext"] = {"privileged": True}
    parse_object(doc)
