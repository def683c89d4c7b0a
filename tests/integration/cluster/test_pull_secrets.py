"""``imagePullSecrets`` against a real registry that wants a password.

The registry is Debian's ``docker-registry`` (the CNCF distribution, 2.8)
on 127.0.0.1 with TLS from a throwaway CA (podman trusts it through
``/etc/containers/certs.d/127.0.0.1:<port>/ca.crt``, removed afterwards) and
htpasswd basic auth. The local busybox is pushed there once per module; the
pods pull it through the real kubelet and podman.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Forbidden
from tests.integration.cluster.test_kubelet import (
    apply,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events
from tests.natsd import free_port
from tests.pki import TestCA

pytestmark = pytest.mark.podman

USER, PASSWORD = "alice", f"pw-{uuid.uuid4().hex}"
CERTS_D = Path("/etc/containers/certs.d")


def _serving(port: int, ca: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1"):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if not binary or not htpasswd:
        pytest.fail("docker-registry and htpasswd are needed: make deps installs them")
    work = tmp_path_factory.mktemp("registry")
    ca = TestCA(work / "ca")
    issued = ca.issue("registry")
    port = free_port()
    host = f"127.0.0.1:{port}"
    (work / "htpasswd").write_text(subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout)
    (work / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(work / "data")}},
        "http": {"addr": host, "tls": {"certificate": str(issued.cert), "key": str(issued.key)}},
        "auth": {"htpasswd": {"realm": "peapod-test", "path": str(work / "htpasswd")}}}))
    trust = CERTS_D / host
    trust.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca.cert_path, trust / "ca.crt")
    proc = subprocess.Popen([binary, "serve", str(work / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    image = f"{host}/private/busybox:v1"
    try:
        deadline = time.monotonic() + 15
        while not _serving(port, ca.cert_path):
            assert proc.poll() is None and time.monotonic() < deadline, "registry did not start"
            time.sleep(0.1)
        subprocess.run(["podman", "push", "-q", "--creds", f"{USER}:{PASSWORD}",
                        "localhost/peapod-busybox:latest", image], check=True, timeout=60)
        yield {"host": host, "image": image}
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(trust, ignore_errors=True)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


def docker_config_secret(name: str, host: str, password: str) -> dict:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}}


def private_pod(name: str, image: str, secrets: list[str]) -> dict:
    manifest = pod_manifest(name, [{"name": "app", "image": image, "command": ["sleep", "3600"],
                                    "imagePullPolicy": "IfNotPresent"}])
    if secrets:
        manifest["spec"]["imagePullSecrets"] = [{"name": n} for n in secrets]
    return manifest


def waiting_reason(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason") or ""


async def test_a_pull_secret_is_the_registry_auth_of_the_pull_and_nothing_else_sees_it(
        ctx, registry, capfd):
    admin, host, image = ctx["admin"], registry["host"], registry["image"]
    suffix = uuid.uuid4().hex[:6]
    for name, password in ((f"regcred-{suffix}", PASSWORD), (f"wrong-{suffix}", "not-it")):
        await request(admin, s.api("secrets", "create"),
                      {"object": docker_config_secret(name, host, password)})
    # without a secret (and with a missing one, and a wrong password) the registry says no
    refused = f"anon-{suffix}"
    await apply(ctx, private_pod(refused, image, [f"nosuch-{suffix}", f"wrong-{suffix}"]))
    pod = await wait_pod(ctx, refused, lambda p: waiting_reason(p) in (
        "ErrImagePull", "ImagePullBackOff"))
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "unauthorized" in message or "authentication required" in message, message
    events = {e.reason: e for e in await pod_events(ctx, refused)}
    assert events["FailedToRetrieveImagePullSecret"].message == (
        f"Unable to retrieve some image pull secrets (nosuch-{suffix}); attempting to pull the "
        "image may not succeed.")
    # with it, the kubelet pulls and runs the image
    allowed = f"private-{suffix}"
    await apply(ctx, private_pod(allowed, image, [f"regcred-{suffix}"]))
    await wait_pod(ctx, allowed, running)
    events = {e.reason: e for e in await pod_events(ctx, allowed)}
    assert events["Pulled"].message.startswith(f'Successfully pulled image "{image}"')
    # the Node authorizer: node-a may read the secret its pod names, node-b may not
    creds = ctx["creds"]
    for node, allowed_to_read in (("node-a", True), ("node-b", False)):
        nc = await connect(creds[f"kubelet-{node}"], name=f"test-{node}")
        try:
            ask = request(nc, s.node_api(node, "secret"),
                          {"namespace": "default", "name": f"regcred-{suffix}"})
            if allowed_to_read:
                assert (await ask)["type"] == "kubernetes.io/dockerconfigjson"
            else:
                with pytest.raises(Forbidden):
                    await ask
        finally:
            await nc.close()
    # the password is in no log line and no event
    out, err = capfd.readouterr()
    every_event = [e.message for name in (refused, allowed) for e in await pod_events(ctx, name)]
    for text in (out, err, *every_event):
        assert PASSWORD not in text and base64.b64encode(PASSWORD.encode()).decode() not in text
    with contextlib.suppress(Exception):
        await request(admin, s.api("secrets", "delete"), {"namespace": "default",
                                                           "name": f"regcred-{suffix}"})
