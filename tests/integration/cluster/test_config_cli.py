"""ConfigMaps and Secrets through the real ``peapod`` script and the real apiserver over NATS.

As Kubernetes' documentation walks a user through them ("Configure a Pod to
use a ConfigMap", "Managing Secrets using kubectl"): generators from literals
and files, manifests with ``data``/``stringData``/``binaryData``, kubectl's
tables and describe (a Secret's values never printed), immutability, types,
deletion by name, by file and with the namespace.
"""

from __future__ import annotations

import base64
import json

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound
from tests.integration.cluster.cli import cli_for

SECRET_VALUE = "S3cr3t-Value-9f2c"

SECRET_MANIFEST = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: mysecret
type: Opaque
data:
  username: {base64.b64encode(b"admin").decode()}
stringData:
  password: {SECRET_VALUE}
"""

CONFIGMAP_MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  player_initial_lives: "3"
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
binaryData:
  blob: AAEC/w==
"""


async def test_generators_tables_and_describe(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    props = tmp_path / "ui.properties"
    props.write_text("color.good=purple\n")
    created = await peapod("create", "configmap", "game-config", "--from-literal=lives=3",
                           f"--from-file={props}", f"--from-file=renamed={props}")
    assert (created.code, created.out) == (0, "configmap/game-config created\n"), created.err
    secret = await peapod("create", "secret", "generic", "db-user-pass",
                          "--from-literal=username=admin", f"--from-literal=password='{SECRET_VALUE}'")
    assert (secret.code, secret.out) == (0, "secret/db-user-pass created\n"), secret.err

    cms = await peapod("get", "configmaps")
    assert [line.split() for line in cms.out.splitlines()] == [
        ["NAME", "DATA", "AGE"], ["game-config", "3", cms.out.split()[-1]]]
    secrets = await peapod("get", "secret")
    assert [line.split()[:3] for line in secrets.out.splitlines()] == [
        ["NAME", "TYPE", "DATA"], ["db-user-pass", "Opaque", "2"]]

    shown = await peapod("get", "secret", "db-user-pass", "-o", "json")
    data = json.loads(shown.out)["data"]
    assert base64.b64decode(data["password"]).decode() == SECRET_VALUE  # quotes trimmed
    described = await peapod("describe", "secret", "db-user-pass")
    assert SECRET_VALUE not in described.out
    assert described.out.splitlines() == [
        "Name:         db-user-pass", "Namespace:    default", "Labels:       <none>",
        "Annotations:  <none>", "", "Type:  Opaque", "", "Data", "====",
        "password:  17 bytes", "username:  5 bytes"]
    cm_described = await peapod("describe", "cm", "game-config")
    assert "lives:\n----\n3\n" in cm_described.out
    assert "renamed:\n----\ncolor.good=purple\n" in cm_described.out
    assert cm_described.out.rstrip().endswith("Events:  <none>")

    duplicate = await peapod("create", "configmap", "dup", "--from-literal=a=1",
                             "--from-literal=a=2")
    assert duplicate.err == ('error: cannot add key "a", another key by that name already exists '
                             'in Data for ConfigMap "dup"\n')
    bad = await peapod("create", "configmap", "bad", "--from-literal=novalue")
    assert bad.err == "error: invalid literal source novalue, expected key=value\n"

    registry = await peapod("create", "secret", "docker-registry", "regcred",
                            "--docker-server=registry.example:5000", "--docker-username=u",
                            f"--docker-password={SECRET_VALUE}")
    assert (registry.code, registry.out) == (0, "secret/regcred created\n"), registry.err
    typed = await peapod("get", "secret", "regcred")
    assert typed.out.splitlines()[1].split()[:3] == [
        "regcred", "kubernetes.io/dockerconfigjson", "1"]
    assert SECRET_VALUE not in (await peapod("describe", "secret", "regcred")).out


async def test_manifests_string_data_binary_data_and_base64_errors(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    applied = await peapod("apply", "-f", "-", stdin=SECRET_MANIFEST + "---\n" + CONFIGMAP_MANIFEST)
    assert applied.out == "secret/mysecret created\nconfigmap/game-demo created\n", applied.err
    again = await peapod("apply", "-f", "-", stdin=SECRET_MANIFEST + "---\n" + CONFIGMAP_MANIFEST)
    assert again.out == "secret/mysecret unchanged\nconfigmap/game-demo unchanged\n", again.err
    stored = await request(apiserver["admin"], s.api("secrets", "get"),
                           {"namespace": "default", "name": "mysecret"})
    assert "stringData" not in stored and stored["type"] == "Opaque"
    assert base64.b64decode(stored["data"]["password"]).decode() == SECRET_VALUE
    cm = await peapod("get", "cm", "game-demo")
    assert cm.out.splitlines()[1].split()[:2] == ["game-demo", "3"]  # data and binaryData

    bad = SECRET_MANIFEST.replace(base64.b64encode(b"admin").decode(), "YWRtaW4")
    refused = await peapod("apply", "-f", "-", stdin=bad.replace("mysecret", "other"))
    assert refused.code == 1
    assert refused.err == ('error: Secret in version "v1" cannot be handled as a Secret: '
                           "illegal base64 data at input byte 4\n")
    docker = await peapod("create", "-f", "-", stdin="""\
apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData: {username: x}
""")
    assert docker.err == ('The Secret "regcred" is invalid: data[.dockerconfigjson]: '
                          "Required value\n")
    with pytest.raises(NotFound):
        await request(apiserver["admin"], s.api("secrets", "get"),
                      {"namespace": "default", "name": "other"})


async def test_immutable_type_and_deletion(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    frozen = CONFIGMAP_MANIFEST + "immutable: true\n"
    assert (await peapod("apply", "-f", "-", stdin=frozen)).code == 0
    changed = await peapod("apply", "-f", "-", stdin=frozen.replace('"3"', '"4"'))
    assert changed.err == ('The ConfigMap "game-demo" is invalid: data: Forbidden: field is '
                           "immutable when `immutable` is set\n")
    thawed = await peapod("apply", "-f", "-", stdin=CONFIGMAP_MANIFEST)
    assert "immutable: Forbidden: field is immutable when `immutable` is set" in thawed.err
    relabelled = await peapod("apply", "-f", "-",
                              stdin=frozen.replace("name: game-demo", "name: game-demo\n  "
                                                   "labels: {app: game}"))
    assert relabelled.out == "configmap/game-demo configured\n", relabelled.err

    assert (await peapod("apply", "-f", "-", stdin=SECRET_MANIFEST)).code == 0
    retyped = await peapod("apply", "-f", "-", stdin=SECRET_MANIFEST.replace(
        "type: Opaque", "type: example.com/other"))
    assert 'type: Invalid value: "example.com/other": field is immutable' in retyped.err

    deleted = await peapod("delete", "configmap", "game-demo")
    assert (deleted.code, deleted.out) == (0, 'configmap "game-demo" deleted\n'), deleted.err
    by_file = await peapod("delete", "-f", "-", stdin=SECRET_MANIFEST)
    assert by_file.out == 'secret "mysecret" deleted\n', by_file.err
    gone = await peapod("get", "secrets")
    assert gone.err == "No resources found in default namespace.\n"


async def test_a_namespace_takes_its_configmaps_and_secrets_with_it(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    assert (await peapod("create", "namespace", "team")).code == 0
    missing = await peapod("create", "secret", "generic", "s", "--from-literal=a=b", "-n", "nope")
    assert missing.err == 'Error from server (NotFound): namespaces "nope" not found\n'
    for args in (("configmap", "c", "--from-literal=a=b"), ("secret", "generic", "s",
                                                            "--from-literal=a=b")):
        made = await peapod("create", *args, "-n", "team")
        assert made.code == 0, made.err
    listed = await peapod("get", "cm", "-A")
    assert listed.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert (await peapod("delete", "ns", "team")).code == 0
    for resource, name in (("configmaps", "c"), ("secrets", "s")):
        with pytest.raises(NotFound):
            await request(apiserver["admin"], s.api(resource, "get"),
                          {"namespace": "team", "name": name})
