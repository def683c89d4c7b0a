"""What a container sees, on real podman: env from ConfigMaps, Secrets and the downward API,
``$(VAR)``, configMap/secret/projected/downwardAPI volumes, subPath, and who may read secrets.

The real apiserver, scheduler and kubelet (the ``cluster`` fixture, conftest.py);
each claim is read back from inside the container (its logs, ``env``,
``cat``, ``stat`` through the kubelet's exec) or from podman and the host.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Forbidden, PeapodError
from peapod.kubelet import configure
from peapod.kubelet.volumes import in_memory
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import (
    busybox,
    eventually,
    pod_events,
    status_of,
)

pytestmark = pytest.mark.podman


SECRET_VALUE = "tops3cret-4b1d-value"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def put(ctx: dict, resource: str, obj: dict) -> dict:
    result = await request(ctx["admin"], s.api(resource, "apply"), {"object": obj})
    return result["object"]  # type: ignore[no-any-return]


def configmap(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: b64(v) for k, v in data.items()}}


def waiting_with(message: str):
    def check(pod: dict) -> bool:
        state = status_of(pod).get("state", {}).get("waiting") or {}
        return state.get("reason") == "CreateContainerConfigError" and state.get("message") == message
    return check


async def logs(ctx: dict, name: str) -> str:
    result = await request(ctx["admin"], s.kubelet("node-a", "logs"), {
        "namespace": "default", "name": name, "container": "c", "follow": False, "tail": None,
        "previous": False})
    return base64.b64decode(result["data"]).decode()


async def test_env_waits_for_its_configmap_and_key_then_starts_with_every_source(ctx, capfd):
    tag = uuid.uuid4().hex[:6]
    cfg, sec, name = f"cfg-{tag}", f"sec-{tag}", f"env-{tag}"
    await put(ctx, "secrets", secret(sec, {"password": SECRET_VALUE, "user": "admin"}))
    manifest = pod_manifest(name, [busybox(
        ["sh", "-c", 'echo "$0|$1|$2"; sleep 3600', "$(GREETING)", "$$(GREETING)", "$(NOPE)"],
        resources={"limits": {"memory": "64Mi", "cpu": "250m"}},
        envFrom=[{"configMapRef": {"name": cfg}, "prefix": "CFG_"}, {"secretRef": {"name": sec}}],
        env=[
            {"name": "GREETING", "value": "hello"},
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": cfg, "key": "level"}}},
            {"name": "FROM_SECRET",
             "valueFrom": {"secretKeyRef": {"name": sec, "key": "password"}}},
            {"name": "OPTIONAL", "valueFrom": {"configMapKeyRef": {
                "name": "absent", "key": "k", "optional": True}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {
                "resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {
                "resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "COMBINED", "value": "$(GREETING)-$(POD_NAME)-$(CFG_level)"},
            {"name": "ESCAPED", "value": "$$(GREETING)"},
            {"name": "TOO_EARLY", "value": "$(LATER)"},
            {"name": "LATER", "value": "late"},
        ])])
    manifest["metadata"]["labels"] = {"app": "demo"}
    await apply(ctx, manifest)
    pod = await wait_pod(ctx, name, waiting_with(f'configmap "{cfg}" not found'))
    assert status_of(pod)["state"]["waiting"]["message"] == f'configmap "{cfg}" not found'
    events = [(e.reason, e.type, e.message) for e in await pod_events(ctx, name)]
    assert ("Failed", "Warning", f'Error: configmap "{cfg}" not found') in events

    await put(ctx, "configmaps", configmap(cfg, {"other": "x"}))
    await wait_pod(ctx, name, waiting_with(f"couldn't find key level in ConfigMap default/{cfg}"),
                   timeout=40)
    await put(ctx, "configmaps", configmap(cfg, {"other": "x", "level": "7"}))
    pod = await wait_pod(ctx, name, running, timeout=40)

    _, env = await kubelet_exec(ctx, name, "c", ["env"])
    seen = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    assert {k: seen.get(k) for k in (
        "GREETING", "FROM_CM", "FROM_SECRET", "CFG_level", "CFG_other", "password", "user",
        "POD_NAME", "NODE", "APP", "MEM_MI", "CPU_M", "COMBINED", "ESCAPED", "TOO_EARLY",
        "LATER")} == {
        "GREETING": "hello", "FROM_CM": "7", "FROM_SECRET": SECRET_VALUE, "CFG_level": "7",
        "CFG_other": "x", "password": SECRET_VALUE, "user": "admin", "POD_NAME": name,
        "NODE": "node-a", "APP": "demo", "MEM_MI": "64", "CPU_M": "250",
        "COMBINED": f"hello-{name}-7", "ESCAPED": "$(GREETING)", "TOO_EARLY": "$(LATER)",
        "LATER": "late"}
    assert "OPTIONAL" not in seen
    assert seen["POD_IP"] == pod["status"]["podIP"] and seen["POD_IP"]
    assert (await logs(ctx, name)).splitlines()[0] == "hello|$(GREETING)|$(NOPE)"

    # the secret's value is nowhere a person or an operator reads: events, status, logs
    events = await pod_events(ctx, name)
    assert all(SECRET_VALUE not in e.message for e in events)
    assert SECRET_VALUE not in str(pod["status"])
    captured = capfd.readouterr()
    assert SECRET_VALUE not in captured.out + captured.err
    assert "container_started" in captured.out + captured.err  # the kubelet's log was captured


async def test_volumes_items_modes_projection_downward_api_and_sub_path(ctx, tmp_path):
    tag = uuid.uuid4().hex[:6]
    cfg, sec, name = f"cfg-{tag}", f"sec-{tag}", f"vol-{tag}"
    await put(ctx, "configmaps", configmap(cfg, {
        "game.properties": "lives=3\n", "ui.properties": "color=purple\n"}))
    await put(ctx, "secrets", secret(sec, {"password": SECRET_VALUE, "user": "admin"}))
    manifest = pod_manifest(name, [busybox(
        ["sleep", "3600"], resources={"limits": {"cpu": "500m"}},
        volumeMounts=[
            {"name": "config", "mountPath": "/etc/config"},
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "all", "mountPath": "/etc/all"},
            {"name": "info", "mountPath": "/etc/podinfo"},
            {"name": "config", "mountPath": "/etc/game.properties", "subPath": "game.properties"},
            {"name": "scratch", "mountPath": "/data", "subPath": "sub/dir"},
        ])],
        volumes=[
            {"name": "config", "configMap": {"name": cfg, "defaultMode": 0o440}},
            {"name": "creds", "secret": {"secretName": sec, "items": [
                {"key": "password", "path": "db/pw", "mode": 0o400}]}},
            {"name": "all", "projected": {"sources": [
                {"configMap": {"name": cfg, "items": [{"key": "ui.properties", "path": "ui"}]}},
                {"secret": {"name": sec, "items": [{"key": "user", "path": "user"}]}},
                {"downwardAPI": {"items": [{"path": "name",
                                            "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "c",
                                                     "resource": "limits.cpu",
                                                     "divisor": "1m"}}]}},
            {"name": "scratch", "emptyDir": {}},
        ])
    manifest["metadata"]["labels"] = {"app": "demo", "tier": "web"}
    await apply(ctx, manifest)
    pod = await wait_pod(ctx, name, running)

    async def sh(script: str) -> str:
        code, out = await kubelet_exec(ctx, name, "c", ["sh", "-c", script])
        assert code == 0, (script, out)
        return out

    assert await sh("cat /etc/config/game.properties /etc/config/ui.properties") == \
        "lives=3\ncolor=purple\n"
    assert await sh("stat -L -c %a /etc/config/ui.properties /etc/creds/db/pw") == "440\n400\n"
    assert await sh("cat /etc/creds/db/pw; ls /etc/creds") == f"{SECRET_VALUE}db\n"
    assert await sh("cat /etc/all/ui /etc/all/user; echo; cat /etc/all/name") == \
        f"color=purple\nadmin\n{name}"
    assert await sh("cat /etc/podinfo/labels; echo; cat /etc/podinfo/cpu") == \
        'app="demo"\ntier="web"\n500'
    assert await sh("cat /etc/game.properties") == "lives=3\n"
    code, _ = await kubelet_exec(ctx, name, "c", ["touch", "/etc/config/new"])
    assert code != 0  # API-data volumes are read-only
    await sh("echo kept > /data/file")

    memory = check_on_host(Path(ctx["node"].state_dir), pod["metadata"]["uid"])
    await request(ctx["admin"], s.api("pods", "delete"),
                  {"namespace": "default", "name": name, "gracePeriodSeconds": 0})
    await eventually(lambda: not memory.exists(), timeout=30)  # removed with the pod


def check_on_host(node_state: Path, uid: str) -> Path:
    """The emptyDir's subPath on disk; the secret volume in memory and nowhere on disk."""
    assert (node_state / "pods" / uid / "volumes" / "scratch" / "sub" / "dir" / "file"
            ).read_text() == "kept\n"
    memory = next(Path("/dev/shm/peapod").glob(f"*/{uid}/volumes/creds"))
    assert in_memory(memory)
    for root, _dirs, files in os.walk(node_state):
        for file in files:
            path = Path(root, file)
            if path.is_file() and not path.is_symlink():
                assert SECRET_VALUE.encode() not in path.read_bytes(), path
    return memory


async def test_a_missing_volume_source_and_an_escaping_sub_path_are_shown(ctx, tmp_path):
    tag = uuid.uuid4().hex[:6]
    outside = tmp_path / "outside"
    outside.mkdir()
    host = tmp_path / "host"
    host.mkdir()
    (host / "link").symlink_to(outside)
    missing, escaping = f"missing-{tag}", f"escape-{tag}"
    await allow_privileged(ctx)  # hostPath: not in the baseline level
    await apply(ctx, pod_manifest(missing, [busybox(
        ["sleep", "3600"], volumeMounts=[{"name": "v", "mountPath": "/v"}])],
        volumes=[{"name": "v", "secret": {"secretName": f"nope-{tag}"}}]))
    await apply(ctx, pod_manifest(escaping, [busybox(
        ["sleep", "3600"], volumeMounts=[{"name": "h", "mountPath": "/h", "subPath": "link"}])],
        volumes=[{"name": "h", "hostPath": {"path": str(host)}}]))
    want = f'MountVolume.SetUp failed for volume "v" : secret "nope-{tag}" not found'
    await wait_pod(ctx, missing, lambda p: (status_of(p).get("state", {}).get("waiting")
                                                or {}).get("message") == want)
    events = [(e.reason, e.message) for e in await pod_events(ctx, missing)]
    assert ("FailedMount", want) in events
    pod = await wait_pod(ctx, escaping, lambda p: "leaves the volume" in str(status_of(p)))
    assert status_of(pod)["state"]["waiting"]["reason"] == "CreateContainerConfigError"


async def test_a_node_reads_only_the_secrets_of_its_own_pods(ctx, apiserver):
    tag = uuid.uuid4().hex[:6]
    mine, other, name = f"used-{tag}", f"unused-{tag}", f"holder-{tag}"
    await put(ctx, "secrets", secret(mine, {"token": SECRET_VALUE}))
    await put(ctx, "secrets", secret(other, {"token": SECRET_VALUE}))
    await apply(ctx, pod_manifest(name, [busybox(["sleep", "3600"], env=[
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": mine, "key": "token"}}}])]))
    await wait_pod(ctx, name, running)
    creds = apiserver["creds"]
    node_a = await connect(creds["kubelet-node-a"], name="attacker-a")
    node_b = await connect(creds["kubelet-node-b"], name="attacker-b")
    try:
        got = await request(node_a, s.node_api("node-a", "secret"),
                            {"namespace": "default", "name": mine})
        assert got["metadata"]["name"] == mine  # its own pod's secret
        with pytest.raises(Forbidden) as refused:
            await request(node_a, s.node_api("node-a", "secret"),
                          {"namespace": "default", "name": other})
        assert str(refused.value) == (
            f'secrets "{other}" is forbidden: User "system:node:node-a" cannot get resource '
            '"secrets" in API group "" in the namespace "default": no relationship found '
            "between node 'node-a' and this object")
        with pytest.raises(Forbidden):  # node B has no pod that uses it
            await request(node_b, s.node_api("node-b", "secret"),
                          {"namespace": "default", "name": mine})
        with pytest.raises(PeapodError):  # nor may it speak for node A (NATS refuses)
            await request(node_b, s.node_api("node-a", "secret"),
                          {"namespace": "default", "name": mine}, timeout=2)
        with pytest.raises(Exception):  # noqa: B017 - nor read the bucket itself
            await node_b.jetstream().get_msg(
                s.KV_STREAM, subject=f"$KV.{s.KV_BUCKET}.{s.kv_key('secrets', 'default', mine)}",
                direct=True)
    finally:
        await node_a.close()
        await node_b.close()


@pytest.fixture
def fast_resync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mounted volumes resynced every second instead of every minute (before the kubelet starts)."""
    monkeypatch.setattr(configure, "VOLUME_RESYNC_SECONDS", 1.0)


async def test_a_running_container_sees_its_configmap_and_labels_change(fast_resync, ctx):
    tag = uuid.uuid4().hex[:6]
    cfg, name = f"live-{tag}", f"live-{tag}"
    await put(ctx, "configmaps", configmap(cfg, {"level": "1"}))
    manifest = pod_manifest(name, [busybox(["sleep", "3600"], volumeMounts=[
        {"name": "config", "mountPath": "/etc/config"},
        {"name": "config", "mountPath": "/etc/level", "subPath": "level"},
        {"name": "info", "mountPath": "/etc/podinfo"}])], volumes=[
        {"name": "config", "configMap": {"name": cfg}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    manifest["metadata"]["labels"] = {"app": "one"}
    await apply(ctx, manifest)
    await wait_pod(ctx, name, running)
    await put(ctx, "configmaps", configmap(cfg, {"level": "2"}))
    await request(ctx["admin"], s.api("pods", "apply"), {"object": {
        **manifest, "metadata": {**manifest["metadata"], "labels": {"app": "two"}}}})

    async def updated() -> bool:
        _, out = await kubelet_exec(ctx, name, "c", ["cat", "/etc/config/level",
                                                     "/etc/podinfo/labels"])
        return out == '2app="two"'

    await eventually(updated, timeout=30)
    _, fixed = await kubelet_exec(ctx, name, "c", ["cat", "/etc/level"])
    assert fixed == "1"  # a subPath is a copy made at start, as in Kubernetes


async def test_fs_group_lets_a_non_root_user_read_a_0400_secret(ctx):
    tag = uuid.uuid4().hex[:6]
    sec, name = f"grp-{tag}", f"grp-{tag}"
    await put(ctx, "secrets", secret(sec, {"token": SECRET_VALUE}))
    await apply(ctx, pod_manifest(name, [busybox(
        ["sleep", "3600"], volumeMounts=[{"name": "s", "mountPath": "/etc/s"}])],
        securityContext={"runAsUser": 1000, "fsGroup": 2000},
        volumes=[{"name": "s", "secret": {"secretName": sec, "defaultMode": 0o400}}]))
    await wait_pod(ctx, name, running)
    code, out = await kubelet_exec(ctx, name, "c", [
        "sh", "-c", "id -u; stat -L -c '%a %g' /etc/s/token; cat /etc/s/token"])
    assert (code, out) == (0, f"1000\n440 2000\n{SECRET_VALUE}")
