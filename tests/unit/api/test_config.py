"""ConfigMap and Secret validation, and Pod fields that read them, in Kubernetes' words."""

from __future__ import annotations

import base64
import json

import pytest

from peapod.api import parse_object
from peapod.api.config import base64_error, decode_b64
from peapod.cli.generators import configmap, docker_registry, parse_file_source, secret, tls
from peapod.cli.main import _named_object, parse_args
from peapod.errors import Invalid
from tests.pki import TestCA


@pytest.mark.parametrize(("text", "error"), [
    ("aGVsbG8=", None), ("aGVs\nbG8=", None), ("", None), ("YQ==", None),
    ("aGVsbG8", "illegal base64 data at input byte 4"),
    ("aGVs bG8=", "illegal base64 data at input byte 4"),
    ("YQ", "illegal base64 data at input byte 0"),
    ("YQ=", "illegal base64 data at input byte 3"),
    ("aGVsbG8=x", "illegal base64 data at input byte 8"),
    ("=aaa", "illegal base64 data at input byte 0"),
])
def test_base64_as_go_decodes_it(text, error):
    assert base64_error(text) == error
    if error is None:
        assert decode_b64(text) in (b"hello", b"", b"a")


def refusal(doc: dict) -> str:
    with pytest.raises(Invalid) as exc:
        parse_object(doc)
    return exc.value.message


def secret_doc(**fields: object) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **fields}


def test_secret_errors_never_quote_a_value():
    assert refusal(secret_doc(data={"k": "!!!!"})) == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0')
    message = refusal(secret_doc(type="kubernetes.io/dockerconfigjson",
                                 stringData={".dockerconfigjson": "hunter2"}))
    assert message == ('Secret "s" is invalid: data[.dockerconfigjson]: Invalid value: '
                       '"<secret contents redacted>": must be a JSON object')
    assert refusal(secret_doc(type="kubernetes.io/tls", stringData={"tls.crt": "x"})) == (
        'Secret "s" is invalid: data[tls.key]: Required value')


def test_config_keys_and_duplicates():
    message = refusal({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                       "data": {"a b": "1", "x": "1"}, "binaryData": {"x": "AA=="}})
    assert ("data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric "
            "characters, '-', '_' or '.'") in message
    assert 'data[x]: Invalid value: "x": duplicate of key present in binaryData' in message


def test_pod_sources_are_checked():
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox",
                        "env": [{"name": "A", "valueFrom": {}},
                                {"name": "B", "valueFrom": {"resourceFieldRef": {
                                    "resource": "limits.gpu"}}}],
                        "envFrom": [{"configMapRef": {"name": "x"}, "secretRef": {"name": "y"}}],
                        "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "/abs"}]}],
        "volumes": [{"name": "v", "downwardAPI": {"items": [
            {"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}},
            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}]}}]}}
    message = refusal(doc)
    for part in (
        'spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: '
        '"spec.nodeName"',
        "spec.volumes[0].downwardAPI.items[1].resourceFieldRef.containerName: Required value",
        'spec.containers[0].volumeMounts[0].subPath: Invalid value: "/abs": must be a relative path',
        "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: "
        "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        'spec.containers[0].env[1].valueFrom.resourceFieldRef.resource: Unsupported value: '
        '"limits.gpu"',
        'spec.containers[0].envFrom[0]: Invalid value: "": may not have more than one field '
        "specified at a time",
    ):
        assert part in message


def test_generators(tmp_path):
    (tmp_path / "text.txt").write_text("hello\n")
    (tmp_path / "blob.bin").write_bytes(b"\xff\x00")
    assert configmap("c", literals=["a='quoted'"], files=[str(tmp_path)]) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "quoted", "text.txt": "hello\n"}, "binaryData": {"blob.bin": "/wA="}}
    assert secret("s", literals=["k=v"], files=[], type_=None)["data"] == {"k": "dg=="}
    assert parse_file_source("key=path") == ("key", "path")
    for source, error in (("=p", "key name for file path p missing"),
                          ("k=", "file path for key name k missing"),
                          ("a=b=c", "key names or file paths cannot contain '='")):
        with pytest.raises(Invalid, match=error):
            parse_file_source(source)
    with pytest.raises(Invalid, match=r"error reading .*: no such file or directory"):
        configmap("c", literals=[], files=[str(tmp_path / "absent")])


def test_docker_registry_and_tls_generators(tmp_path):
    doc = docker_registry("regcred", server="registry.example:5000", username="u",
                          password="p@ss", email=None, files=[])
    assert doc["type"] == "kubernetes.io/dockerconfigjson"
    assert json.loads(base64.b64decode(doc["data"][".dockerconfigjson"])) == {
        "auths": {"registry.example:5000": {"username": "u", "password": "p@ss",
                                            "auth": base64.b64encode(b"u:p@ss").decode()}}}
    parse_object(doc)  # a valid dockerconfigjson Secret
    with pytest.raises(Invalid, match="either --from-file or the combination"):
        docker_registry("r", server=None, username="u", password=None, email=None, files=[])

    ca = TestCA(tmp_path)
    pair, other = ca.issue("web"), ca.issue("other")
    made = tls("web-tls", cert=str(pair.cert), key=str(pair.key))
    assert made["type"] == "kubernetes.io/tls" and set(made["data"]) == {"tls.crt", "tls.key"}
    with pytest.raises(Invalid, match="failed to load key pair"):
        tls("bad", cert=str(pair.cert), key=str(other.key))
    with pytest.raises(Invalid, match="unknown flag: --cert"):
        _named_object(parse_args(["create", "secret", "generic", "s", "--cert", "x"]))
    with pytest.raises(Invalid, match="unknown flag: --docker-server"):
        _named_object(parse_args(["create", "namespace", "n", "--docker-server", "x"]))
    made = _named_object(parse_args(["create", "secret", "docker-registry", "r",
                                     "--docker-username", "u", "--docker-password", "p"]))
    assert "https://index.docker.io/v1/" in base64.b64decode(
        made["data"][".dockerconfigjson"]).decode()
