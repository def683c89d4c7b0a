"""securityContext acted on by the real kubelet through real podman.

Each container prints what the kernel says about itself (``id``, the
capability, no_new_privs and seccomp lines of /proc/self/status, whether / and
an emptyDir are writable, sysctls), and the test reads it back through the
kubelet's logs API, so each claim is checked where it takes effect.
"""

from __future__ import annotations

import base64
import re
import uuid

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    pod_manifest,
    wait_pod,
)

pytestmark = pytest.mark.podman


IMAGE = {"image": "localhost/peapod-busybox:latest", "imagePullPolicy": "IfNotPresent"}
REPORT = ("id; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
          "touch /rootfs-written 2>/dev/null && echo root=rw || echo root=ro; "
          "touch /data/f 2>/dev/null && echo data=rw || echo data=ro; ls -ldn /data /data/f; "
          "sysctl -n kernel.shm_rmid_forced net.ipv4.ip_unprivileged_port_start")


def reporter(name: str, **security) -> dict:
    container = {"name": name, **IMAGE, "command": ["sh", "-c", REPORT],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    if security:
        container["securityContext"] = security
    return container


def done(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


async def logs(ctx: dict, name: str, container: str) -> str:
    result = await request(ctx["admin"], s.kubelet("node-a", "logs"), {
        "namespace": "default", "name": name, "container": container})
    return base64.b64decode(result["data"]).decode()


def ids(text: str) -> str:
    """``id``'s first line without names: podman adds passwd entries named by number."""
    return re.sub(r"\(\d+\)", "", text.splitlines()[0])


def status_line(text: str, field: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith(f"{field}:"))


def waiting(pod: dict) -> dict:
    states = [c.get("state", {}).get("waiting") for c in pod["status"].get("containerStatuses") or []]
    return next((w for w in states if w and w.get("reason") != "ContainerCreating"), {})


async def test_pod_and_container_security_contexts_reach_the_kernel(ctx):
    name = f"sec-{uuid.uuid4().hex[:6]}"
    await allow_privileged(ctx)  # privileged and Unconfined: not in the baseline level
    manifest = pod_manifest(name, [
        reporter("plain"),
        # the container's runAsUser overrides the pod's; the pod's group and fsGroup stay
        reporter("override", runAsUser=2000),
        reporter("locked", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                 allowPrivilegeEscalation=False, readOnlyRootFilesystem=True,
                 seccompProfile={"type": "RuntimeDefault"}),
        reporter("unconfined", runAsUser=0, seccompProfile={"type": "Unconfined"}),
        reporter("privileged", runAsUser=0, privileged=True),
    ], restartPolicy="Never", volumes=[{"name": "data", "emptyDir": {}}],
        securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                         "supplementalGroups": [4000],
                         "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                     {"name": "net.ipv4.ip_unprivileged_port_start",
                                      "value": "80"}]})
    await apply(ctx, manifest)
    pod = await wait_pod(ctx, name, done, timeout=90)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    out = {c: await logs(ctx, name, c)
           for c in ("plain", "override", "locked", "unconfined", "privileged")}

    plain = out["plain"]
    assert ids(plain) == "uid=1000 gid=3000 groups=2000,3000,4000", plain
    assert status_line(plain, "CapEff") == "0000000000000000"  # non-root: no effective caps
    assert status_line(plain, "NoNewPrivs") == "0"
    assert status_line(plain, "Seccomp") == "2"  # RuntimeDefault when none is given
    assert "root=rw" not in plain  # uid 1000 may not write /, root-owned
    # the emptyDir belongs to the fsGroup, setgid, and what is written there inherits it
    assert "data=rw" in plain
    assert any(line.startswith("drwxrwsrwx") and " 2000 " in line for line in plain.splitlines())
    assert any(line.startswith("-") and " 2000 " in line for line in plain.splitlines()), plain
    assert plain.splitlines()[-2:] == ["1", "80"]  # the pod's sysctls

    assert ids(out["override"]) == "uid=2000 gid=3000 groups=2000,3000,4000"

    locked = out["locked"]
    assert status_line(locked, "CapEff") == "0000000000000400"  # NET_BIND_SERVICE only (podman)
    assert status_line(locked, "NoNewPrivs") == "1"
    assert status_line(locked, "Seccomp") == "2"
    assert "root=ro" in locked and "data=rw" in locked

    unconfined = out["unconfined"]
    assert ids(unconfined).startswith("uid=0 gid=3000"), unconfined
    assert status_line(unconfined, "Seccomp") == "0"
    assert "root=rw" in unconfined
    assert int(status_line(unconfined, "CapEff"), 16) != 0

    privileged = out["privileged"]
    assert status_line(privileged, "Seccomp") == "0"
    assert int(status_line(privileged, "CapEff"), 16) >= int(status_line(unconfined, "CapEff"), 16)
    assert bin(int(status_line(privileged, "CapEff"), 16)).count("1") >= 38  # all of them


async def test_run_as_non_root_is_checked_against_the_image_user(ctx):
    # peapod-busybox has no USER: it runs as root, so runAsNonRoot alone must stop it
    name = f"nonroot-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [{"name": "c", **IMAGE,
                                             "command": ["sleep", "3600"]}],
                                      securityContext={"runAsNonRoot": True}))
    pod = await wait_pod(ctx, name, lambda p: bool(waiting(p)))
    uid = pod["metadata"]["uid"]
    assert waiting(pod) == {
        "reason": "CreateContainerConfigError",
        "message": "container has runAsNonRoot and image will run as root "
                   f'(pod: "{name}_default({uid})", container: c)'}
    assert pod["status"]["phase"] == "Pending"

    # a container's runAsUser satisfies it; an explicit 0 breaks it
    ok = f"nonroot-ok-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(ok, [
        {"name": "c", **IMAGE, "command": ["sh", "-c", "id -u"],
         "securityContext": {"runAsUser": 65534}}],
        restartPolicy="Never", securityContext={"runAsNonRoot": True}))
    assert (await wait_pod(ctx, ok, done))["status"]["phase"] == "Succeeded"
    assert (await logs(ctx, ok, "c")).strip() == "65534"

    zero = f"nonroot-zero-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(zero, [
        {"name": "c", **IMAGE, "command": ["sleep", "3600"],
         "securityContext": {"runAsUser": 0, "runAsNonRoot": True}}]))
    pod = await wait_pod(ctx, zero, lambda p: bool(waiting(p)))
    assert waiting(pod)["message"].startswith("container's runAsUser breaks non-root policy")


async def test_localhost_seccomp_profile_is_read_from_the_kubelets_directory(ctx, tmp_path):
    profiles = tmp_path / "kubelet" / "seccomp" / "profiles"
    profiles.mkdir(parents=True)
    # everything allowed but mkdir, which fails with EPERM: the profile is the one in force
    (profiles / "no-mkdir.json").write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], '
        '"action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}')
    name = f"seccomp-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [
        {"name": "c", **IMAGE,
         "command": ["sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /made || echo refused"],
         "securityContext": {"seccompProfile": {"type": "Localhost",
                                                "localhostProfile": "profiles/no-mkdir.json"}}}],
        restartPolicy="Never"))
    await wait_pod(ctx, name, done)
    text = await logs(ctx, name, "c")
    assert "Seccomp:\t2" in text and "refused" in text, text

    missing = f"seccomp-missing-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(missing, [
        {"name": "c", **IMAGE, "command": ["true"]}],
        securityContext={"seccompProfile": {"type": "Localhost",
                                            "localhostProfile": "profiles/absent.json"}}))
    pod = await wait_pod(ctx, missing, lambda p: bool(waiting(p)))
    assert waiting(pod)["reason"] == "CreateContainerError"
    assert "profiles/absent.json" in waiting(pod)["message"]


async def test_refused_fields_name_themselves_and_nothing_is_stored(ctx):
    name = f"refused-{uuid.uuid4().hex[:6]}"
    manifest = pod_manifest(name, [
        {"name": "c", **IMAGE,
         "securityContext": {"seLinuxOptions": {"level": "s0:c123,c456"},
                             "capabilities": {"add": ["NOT_A_CAP"]}}}],
        securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                         "appArmorProfile": {"type": "RuntimeDefault"}})
    with pytest.raises(Exception) as refused:
        await request(ctx["admin"], s.api("pods", "create"), {"object": manifest})
    text = str(refused.value)
    for field in ("spec.containers[0].securityContext.seLinuxOptions",
                  "spec.containers[0].securityContext.capabilities.add[0]",
                  "spec.securityContext.sysctls[0].name", "spec.securityContext.appArmorProfile"):
        assert field in text, text
    assert await request(ctx["admin"], s.api("pods", "list"), {}) == []
