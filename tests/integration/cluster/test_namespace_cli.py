"""Namespaces through the real ``peapod`` script, as Kubernetes' docs walk a user through them.

The QoS page of Kubernetes' documentation: ``kubectl create namespace
qos-example``, then ``kubectl apply -f qos-pod.yaml --namespace=qos-example``
of a manifest that names its namespace itself.
"""

from __future__ import annotations

import asyncio

import pytest

from peapod.api import Namespace
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.cli.client import Client
from peapod.errors import NotFound
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_kubelet import (
    podman_ids,
    running,
)

QOS_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: qos-demo
  namespace: qos-example
spec:
  containers:
  - name: qos-demo-ctr
    image: nginx
    resources:
      limits:
        memory: "200Mi"
        cpu: "700m"
      requests:
        memory: "200Mi"
        cpu: "700m"
"""

WITH_ITS_NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: qos-example
---
""" + QOS_POD


async def test_the_docs_namespace_walkthrough(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    missing = await peapod("apply", "-f", "-", stdin=QOS_POD)
    assert (missing.code, missing.out) == (1, "")
    assert missing.err == 'Error from server (NotFound): namespaces "qos-example" not found\n'

    created = await peapod("create", "namespace", "qos-example")
    assert (created.code, created.out) == (0, "namespace/qos-example created\n"), created.err
    applied = await peapod("apply", "-f", "-", "--namespace=qos-example", stdin=QOS_POD)
    assert (applied.code, applied.out) == (0, "pod/qos-demo created\n"), applied.err

    listed = await peapod("get", "pods", "-n", "qos-example", "-o", "name")
    assert listed.out == "pod/qos-demo\n"
    everywhere = await peapod("get", "pods", "-A")
    assert everywhere.out.splitlines()[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS",
                                                      "RESTARTS", "AGE"]
    assert everywhere.out.splitlines()[1].split()[:2] == ["qos-example", "qos-demo"]
    here = await peapod("get", "pods")  # the context's namespace is default
    assert here.err == "No resources found in default namespace.\n"

    namespaces = await peapod("get", "ns")
    assert [line.split()[:2] for line in namespaces.out.splitlines()] == [
        ["NAME", "STATUS"], ["default", "Active"], ["qos-example", "Active"]]
    described = await peapod("describe", "ns", "qos-example")
    assert described.out.splitlines() == [
        "Name:         qos-example", "Labels:       kubernetes.io/metadata.name=qos-example",
        "Annotations:  <none>", "Status:       Active", "", "No resource quota.", "",
        "No LimitRange resource."]


async def test_minus_n_that_contradicts_the_file_is_refused_and_nothing_is_sent(apiserver,
                                                                                tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    for verb in ("apply", "create", "delete"):
        refused = await peapod(verb, "-f", "-", "-n", "default", stdin=WITH_ITS_NAMESPACE)
        assert (refused.code, refused.out) == (1, ""), verb
        assert refused.err == (
            'error: the namespace from the provided object "qos-example" does not match the '
            "namespace \"default\". You must pass '--namespace=qos-example' to perform this "
            "operation.\n")
    listed = await request(apiserver["admin"], s.api("namespaces", "list"), {})
    assert [n["metadata"]["name"] for n in listed] == ["default"]


async def test_a_file_with_its_namespace_creates_both_in_order_and_delete_removes_both(
        apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path, namespace="elsewhere")  # the context's: not a conflict
    created = await peapod("create", "-f", "-", stdin=WITH_ITS_NAMESPACE)
    assert created.out == "namespace/qos-example created\npod/qos-demo created\n", created.err
    again = await peapod("apply", "-f", "-", stdin=WITH_ITS_NAMESPACE)
    assert again.out == "namespace/qos-example unchanged\npod/qos-demo unchanged\n", again.err
    shown = await peapod("get", "ns", "qos-example", "-o", "yaml")
    assert "finalizers:\n  - kubernetes\n" in shown.out and "phase: Active" in shown.out
    deleted = await peapod("delete", "ns", "qos-example")
    assert (deleted.code, deleted.out) == (0, 'namespace "qos-example" deleted\n'), deleted.err
    with pytest.raises(NotFound):
        await request(apiserver["admin"], s.api("pods", "get"),
                      {"namespace": "qos-example", "name": "qos-demo"})
    # the same file again, deleted as a file: the pod goes with its namespace, both reported
    assert (await peapod("create", "-f", "-", stdin=WITH_ITS_NAMESPACE)).code == 0
    by_file = await peapod("delete", "-f", "-", stdin=WITH_ITS_NAMESPACE)
    assert (by_file.code, by_file.err) == (0, "")
    assert by_file.out == 'namespace "qos-example" deleted\npod "qos-demo" deleted\n'
    again = await peapod("delete", "-f", "-", stdin=WITH_ITS_NAMESPACE)
    assert again.code == 1
    assert again.err == ('Error from server (NotFound): namespaces "qos-example" not found\n'
                         'Error from server (NotFound): pods "qos-demo" not found\n')
    default = await peapod("delete", "namespace", "default")
    assert default.err == ('Error from server (Forbidden): namespaces "default" is forbidden: '
                           "this namespace may not be deleted\n")


async def test_get_ns_watch_sees_a_namespace_come_and_go(apiserver):
    client = Client(apiserver["admin"], namespace="default")
    changes = await client.watch("namespaces")
    await request(apiserver["admin"], s.api("namespaces", "create"), {"object": {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watched"}}})
    await request(apiserver["admin"], s.api("namespaces", "delete"), {"name": "watched"})
    seen = []
    async for kind, obj in changes:
        assert isinstance(obj, Namespace)
        seen.append((kind, obj.metadata.name, obj.status.phase if obj.status else None))
        if kind == "DELETED":
            break
    assert seen == [("ADDED", "watched", "Active"), ("MODIFIED", "watched", "Terminating"),
                    ("DELETED", "watched", "Terminating")]


async def pod_in(admin, namespace: str, name: str, predicate, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        pod = await request(admin, s.api("pods", "get"), {"namespace": namespace, "name": name})
        if predicate(pod):
            return pod
        await asyncio.sleep(0.2)
    raise AssertionError(f"pod {namespace}/{name} never matched")


@pytest.mark.podman
async def test_deleting_a_namespace_stops_its_running_pods_then_removes_it(
        cluster, tmp_path):
    admin = cluster["admin"]
    await request(admin, s.api("namespaces", "create"), {"object": {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}})
    await request(admin, s.api("pods", "create"), {"object": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web.v1", "namespace": "shop"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "c", "image": "localhost/peapod-busybox:latest",
             "command": ["sleep", "3600"]}]}}})
    pod = await pod_in(admin, "shop", "web.v1", running)
    uid = pod["metadata"]["uid"]
    assert podman_ids(uid)
    result = await request(admin, s.api("namespaces", "delete"), {"name": "shop"})
    assert result["finished"] is False
    shown = await request(admin, s.api("namespaces", "get"), {"name": "shop"})
    assert shown["status"]["phase"] == "Terminating"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        try:
            await request(admin, s.api("namespaces", "get"), {"name": "shop"})
        except NotFound:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("namespace shop is still there")
    assert podman_ids(uid) == []
    assert await request(admin, s.api("pods", "list"), {"namespace": "shop"}) == []
