"""Hostile strings stay literals all the way to podman's API; names Kubernetes refuses, refused.

A pod whose annotations, command, args, env values, working directory and
mount path hold shell metacharacters, ``$(…)``, backticks, newlines,
unicode, ``--flag``-looking and very long values runs on real podman (the
real apiserver, scheduler and kubelet): podman's own record of the container
(``podman container inspect``: Entrypoint, Cmd, Env, mounts, labels) holds
each string exactly, the container prints them back exactly, and none of
the ``$(touch …)`` and backticks ran anywhere (their marker files do not
exist on the host, and ``ls`` inside the container finds none). An image
name of the same kind is a pull that fails, named in the status, and runs
nothing. Names that Kubernetes refuses are refused with its rule.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Invalid
from tests.integration.cluster.test_kubelet import (
    apply,
    podman_ids,
    wait_pod,
)

pytestmark = pytest.mark.podman

IMAGE = "localhost/peapod-busybox:latest"


def hostile(marker: Path) -> list[str]:
    """Strings a shell would act on; each would create ``marker``* if one ever saw it."""
    return [f"$(touch {marker}-1)", f"`touch {marker}-2`", f"; touch {marker}-3", f"| touch {marker}-4",
            f"&& touch {marker}-5", "--privileged", "-rf", "a\nb", "tab\there", "'single' \"double\"",
            "é\u200bü 🦭", "$HOME ${PATH} %s %n", "*", "../../etc/passwd", "\\", "x" * 4096]


def inspect(uid: str) -> dict:
    ids = podman_ids(uid)
    out = subprocess.run(["podman", "container", "inspect", *ids], capture_output=True, text=True,
                         check=True).stdout
    return next(c for c in json.loads(out) if c["Config"]["Labels"].get("io.peapod.container.name")
                == "c")


async def test_hostile_strings_reach_podman_as_literals_and_no_shell_sees_them(
        cluster, tmp_path):
    marker = tmp_path / "ran"
    args = hostile(marker)
    value = "\n".join(args)
    mount = f"/mnt/$(touch {marker}-m) `id` ;x"
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    created = await apply(cluster, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": {"example.com/note": value}},
        "spec": {"restartPolicy": "Never", "volumes": [{"name": "v", "emptyDir": {}}],
                 "containers": [{
                     "name": "c", "image": IMAGE, "command": ["echo"], "args": args,
                     "env": [{"name": "HOSTILE", "value": value},
                             {"name": "--flag", "value": "--privileged"}],
                     "workingDir": mount, "volumeMounts": [{"name": "v", "mountPath": mount}]}]}})
    uid = created["metadata"]["uid"]
    assert created["metadata"]["annotations"]["example.com/note"] == value
    await wait_pod(cluster, name, lambda p: p.get("status", {}).get("phase") == "Succeeded")
    container = inspect(uid)
    config = container["Config"]
    assert config["Entrypoint"] in (["echo"], "echo")  # podman 4 printed a string here
    assert config["Cmd"] == args
    assert f"HOSTILE={value}" in config["Env"] and "--flag=--privileged" in config["Env"]
    assert config["WorkingDir"] == mount
    assert mount in [m["Destination"] for m in container["Mounts"]]
    logs = await request(cluster["admin"], s.kubelet("node-a", "logs"),
                         {"namespace": "default", "name": name})
    assert base64.b64decode(logs["data"]).decode() == " ".join(args) + "\n"
    assert not list(tmp_path.glob("ran*"))  # no shell ran any of it on the host


async def test_a_hostile_image_is_a_failed_pull_named_in_the_status_and_runs_nothing(
        cluster, tmp_path):
    marker = tmp_path / "pulled"
    image = f"busybox;touch {marker}`touch {marker}2`$(touch {marker}3)"
    name = f"image-{uuid.uuid4().hex[:6]}"
    created = await apply(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                    "spec": {"containers": [{"name": "c", "image": image}]}})

    def waiting_reason(pod: dict) -> str | None:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        return (statuses[0].get("state", {}).get("waiting") or {}).get("reason") if statuses else None

    pod = await wait_pod(cluster, name, lambda p: waiting_reason(p) in (
        "InvalidImageName", "ErrImagePull", "ImagePullBackOff"))
    status = pod["status"]["containerStatuses"][0]
    assert status["image"] == image
    assert app_containers(created["metadata"]["uid"]) == []  # nothing was created from it
    assert not list(tmp_path.glob("pulled*"))


def app_containers(uid: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label=io.peapod.pod.uid={uid}",
                          "--filter", "label=io.peapod.container.name=c"], capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def pod_named(name: str, **changes: object) -> dict:
    doc: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                 "spec": {"containers": [{"name": "c", "image": IMAGE}]}}
    for path, value in changes.items():
        node = doc
        *parents, last = path.split("__")
        for step in parents:
            node = node[step] if not step.isdigit() else node[int(step)]
        node[last] = value
    return doc


# Kubernetes' words for its name rules, as far as peapod's messages share them
RULE_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.'")
RULE_LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"


@pytest.mark.parametrize(("doc", "field", "rule"), [
    *[(pod_named(bad), "metadata.name", RULE_SUBDOMAIN)
      for bad in ("Web", "$(id)", "`id`", "a;b", "a\nb", "--privileged", "-rf", "é", "a b",
                  "a/b", "x" * 254)],
    (pod_named("ok", metadata__namespace="$(id)"), "metadata.namespace", RULE_LABEL),
    (pod_named("ok", spec__containers=[{"name": "c;id", "image": IMAGE}]),
     "spec.containers[0].name", RULE_LABEL),
    (pod_named("ok", metadata__labels={"app": "$(id)"}), "metadata.labels.app",
     "a label value must be empty or"),
    (pod_named("ok", metadata__labels={"$(id)": "x"}), "metadata.labels",
     "invalid label key '$(id)'"),
    (pod_named("ok", metadata__annotations={"`id`": "x"}), "metadata.annotations",
     "invalid annotation key '`id`'"),
    (pod_named("ok", spec__nodeName="a;b"), "spec.nodeName", RULE_SUBDOMAIN),
])
async def test_names_kubernetes_refuses_are_refused_with_its_rule_and_nothing_is_stored(
        apiserver, doc, field, rule):
    admin = apiserver["admin"]
    with pytest.raises(Invalid) as refused:
        await request(admin, s.api("pods", "create"), {"object": doc})
    assert f"{field}: " in refused.value.message and rule in refused.value.message, \
        refused.value.message
    assert await request(admin, s.api("pods", "list"), {"namespace": "default"}) == []
