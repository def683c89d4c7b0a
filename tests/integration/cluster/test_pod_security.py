"""Pod Security Admission on the real apiserver over a real nats-server: levels per namespace,
the cluster's default, and Kubernetes' words for a refusal; nothing refused is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from peapod.api.podsecurity import Policy
from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Conflict, Forbidden, Invalid
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_namespaces import ns, pod, pods_in
from tests.integration.cluster.test_replicasets import replicaset
from tests.waiting import eventually

LEVEL = "pod-security.kubernetes.io/enforce"

PRIVILEGED_POD = pod("root", hostNetwork=True, hostPID=True, containers=[
    {"name": "c", "image": "busybox:1", "securityContext": {"privileged": True},
     "ports": [{"containerPort": 80, "hostPort": 80}],
     "volumeMounts": [{"name": "etc", "mountPath": "/host"}]}],
    volumes=[{"name": "etc", "hostPath": {"path": "/etc"}}])

RESTRICTED_POD = pod("tight", securityContext={
    "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}, containers=[
    {"name": "c", "image": "busybox:1", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}])


async def refused(admin, doc: dict, namespace: str = "default") -> str:
    with pytest.raises(Forbidden) as info:
        await request(admin, s.api("pods", "create"), {"object": doc, "namespace": namespace})
    return info.value.message


async def test_the_default_level_is_baseline_in_kubernetes_words(apiserver):
    admin = apiserver["admin"]
    assert await refused(admin, PRIVILEGED_POD) == (
        'pods "root" is forbidden: violates PodSecurity "baseline:latest": '
        "host namespaces (hostNetwork=true, hostPID=true), "
        'hostPath volumes (volume "etc"), '
        'hostPort (container "c" uses hostPort 80), '
        'privileged (container "c" must not set securityContext.privileged=true)')
    assert await pods_in(admin) == []
    # what baseline allows: the minimally specified pod, and NET_BIND_SERVICE-like defaults
    await request(admin, s.api("pods", "create"), {"object": pod("plain", containers=[
        {"name": "c", "image": "busybox:1",
         "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]}}}])})
    assert await pods_in(admin) == ["default/plain"]


async def test_namespace_labels_choose_the_level(apiserver):
    admin = apiserver["admin"]
    await request(admin, s.api("namespaces", "create"),
                  {"object": ns("infra", labels={LEVEL: "privileged"})})
    await request(admin, s.api("pods", "create"), {"object": PRIVILEGED_POD, "namespace": "infra"})

    await request(admin, s.api("namespaces", "create"), {"object": ns("apps", labels={
        LEVEL: "restricted", f"{LEVEL}-version": "v1.30"})})
    # Kubernetes' own example of a refusal at restricted, word for word
    assert await refused(admin, pod("nginx", containers=[{"name": "nginx", "image": "nginx"}]),
                         "apps") == (
        'pods "nginx" is forbidden: violates PodSecurity "restricted:v1.30": '
        'allowPrivilegeEscalation != false (container "nginx" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "nginx" must set '
        'securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")')
    await request(admin, s.api("pods", "create"), {"object": RESTRICTED_POD, "namespace": "apps"})
    assert await pods_in(admin) == ["apps/tight", "infra/root"]

    # relabelling a namespace changes what is admitted next
    await request(admin, s.api("namespaces", "apply"),
                  {"object": ns("infra", labels={LEVEL: "baseline"})})
    assert "violates PodSecurity \"baseline:latest\"" in await refused(
        admin, {**PRIVILEGED_POD, "metadata": {"name": "again"}}, "infra")


async def test_bad_labels_are_refused_on_the_namespace(apiserver):
    admin = apiserver["admin"]
    for labels, expected in [
        ({LEVEL: "strict"}, f'metadata.labels[{LEVEL}]: Invalid value: "strict": must be one of '
                            "privileged, baseline, restricted"),
        ({f"{LEVEL}-version": "1.30"}, 'Invalid value: "1.30"'),
        ({"pod-security.kubernetes.io/warn": "restricted"}, "warn and audit modes are not "
                                                            "implemented"),
    ]:
        with pytest.raises(Invalid) as info:
            await request(admin, s.api("namespaces", "create"),
                          {"object": ns("bad", labels=labels)})
        assert expected in info.value.message


@pytest.fixture
async def privileged_cluster(cluster_creds: dict) -> AsyncIterator[dict]:
    """An apiserver started with --pod-security privileged."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_apiserver(cluster_creds["apiserver"], stop=stop,
                                             pod_security=Policy("privileged")))
    admin = await connect(cluster_creds["admin"], name="test-admin")
    for _ in range(100):
        try:
            await request(admin, s.api("nodes", "list"), {}, timeout=0.5)
            break
        except Exception:
            await asyncio.sleep(0.05)
    yield {"admin": admin}
    await admin.close()
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_the_cluster_default_is_the_apiservers_to_choose(privileged_cluster):
    admin = privileged_cluster["admin"]
    await request(admin, s.api("pods", "create"), {"object": PRIVILEGED_POD})
    await request(admin, s.api("namespaces", "create"),
                  {"object": ns("locked", labels={LEVEL: "restricted"})})
    assert "restricted:latest" in await refused(admin, PRIVILEGED_POD, "locked")


async def test_a_replicaset_whose_pods_break_the_level_reports_kubernetes_failure(controllers):
    admin = controllers["admin"]
    rs = replicaset("agent", 2)
    rs["spec"]["template"]["spec"]["hostNetwork"] = True
    await request(admin, s.api("replicasets", "create"), {"object": rs})

    async def failure() -> dict | None:
        got = await request(admin, s.api("replicasets", "get"),
                            {"namespace": "default", "name": "agent"})
        conditions = (got.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "ReplicaFailure"), None)

    condition = await eventually(failure, "a ReplicaFailure condition")
    assert condition["reason"] == "FailedCreate"
    assert condition["message"].startswith('pods "agent-'), condition
    assert condition["message"].endswith(
        'is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)')
    assert await pods_in(admin) == []


async def test_kubectls_way_to_set_a_level_is_label_ns(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    admin = apiserver["admin"]
    assert "baseline:latest" in await refused(admin, PRIVILEGED_POD)
    labeled = await peapod("label", "ns", "default", f"{LEVEL}=privileged")
    assert (labeled.code, labeled.out) == (0, "namespace/default labeled\n"), labeled
    await request(admin, s.api("pods", "create"), {"object": PRIVILEGED_POD})

    bad = await peapod("label", "ns", "default", f"{LEVEL}=strict", "--overwrite")
    assert bad.code == 1 and 'Invalid value: "strict": must be one of privileged, baseline, ' \
        "restricted" in bad.err, bad
    stored = await request(admin, s.api("namespaces", "get"), {"name": "default"})
    assert stored["metadata"]["labels"][LEVEL] == "privileged"
    assert stored["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"

    # an update names the version it was made from: a stale one is a Conflict
    stale = {**stored, "metadata": {**stored["metadata"], "labels": {}}}
    await peapod("label", "ns", "default", "team=a")
    with pytest.raises(Conflict, match="the object has been modified"):
        await request(admin, s.api("namespaces", "update"), {"object": stale})
