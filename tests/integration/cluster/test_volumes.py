"""PersistentVolumes and claims through the real ``peapod`` script, apiserver and controllers.

As Kubernetes' "Configure a Pod to Use a PersistentVolume for Storage" walks
a user through them: a hostPath volume of class ``manual``, a claim that the
binder binds to it, kubectl's tables, describe, refusals in Kubernetes'
words, protection while a pod uses the claim, and Released after the claim.
"""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound
from tests.integration.cluster.cli import cli_for
from tests.waiting import eventually

PV = """\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: task-pv-volume
  labels:
    type: local
spec:
  storageClassName: manual
  capacity:
    storage: 10Gi
  accessModes:
    - ReadWriteOnce
  hostPath:
    path: "/mnt/data"
"""

PVC = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: task-pv-claim
spec:
  storageClassName: manual
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 3Gi
"""


async def _get(admin, resource: str, name: str, namespace: str | None = "default") -> dict:
    return await request(admin, s.api(resource, "get"), {"namespace": namespace, "name": name})


async def _phase(admin, resource: str, name: str) -> str:
    try:
        return ((await _get(admin, resource, name)).get("status") or {}).get("phase", "")
    except NotFound:
        return "<gone>"


async def test_task_pv_volume_binds_and_prints_as_kubectl(controllers, tmp_path):
    admin, peapod = controllers["admin"], cli_for(controllers, tmp_path)
    applied = await peapod("apply", "-f", "-", stdin=PV)
    assert (applied.code, applied.out) == (0, "persistentvolume/task-pv-volume created\n"), \
        applied.err
    await eventually(lambda: _is(admin, "persistentvolumes", "task-pv-volume", "Available"),
                     "the volume is Available")
    applied = await peapod("apply", "-f", "-", stdin=PVC)
    assert applied.out == "persistentvolumeclaim/task-pv-claim created\n", applied.err
    await eventually(lambda: _is(admin, "persistentvolumeclaims", "task-pv-claim", "Bound"),
                     "the claim is Bound")
    pv = await _get(admin, "persistentvolumes", "task-pv-volume", None)
    assert pv["spec"]["claimRef"]["name"] == "task-pv-claim"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    pvc = await _get(admin, "persistentvolumeclaims", "task-pv-claim")
    assert pvc["spec"]["volumeName"] == "task-pv-volume"
    assert pvc["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                             "capacity": {"storage": "10Gi"}}

    table = await peapod("get", "pv")
    header, row = table.out.splitlines()
    assert header.split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY",
                              "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
                              "REASON", "AGE"]
    assert row.split()[:8] == ["task-pv-volume", "10Gi", "RWO", "Retain", "Bound",
                               "default/task-pv-claim", "manual", "<unset>"]
    table = await peapod("get", "pvc")
    header, row = table.out.splitlines()
    assert header.split()[:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES"]
    assert row.split()[:7] == ["task-pv-claim", "Bound", "task-pv-volume", "10Gi", "RWO",
                               "manual", "<unset>"]
    described = await peapod("describe", "pvc", "task-pv-claim")
    assert "Status:         Bound" in described.out or "Bound" in described.out, described.err
    assert "Used By:" in described.out
    described = await peapod("describe", "pv", "task-pv-volume")
    assert "Claim:" in described.out and "default/task-pv-claim" in described.out
    assert "/mnt/data" in described.out

    again = await peapod("apply", "-f", "-", stdin=PVC)  # the binding survives a re-apply
    assert again.out == "persistentvolumeclaim/task-pv-claim unchanged\n", again.err

    deleted = await peapod("delete", "pvc", "task-pv-claim")
    assert deleted.out == 'persistentvolumeclaim "task-pv-claim" deleted\n', deleted.err
    await eventually(lambda: _is(admin, "persistentvolumes", "task-pv-volume", "Released"),
                     "the volume is Released once its claim is gone")
    table = await peapod("get", "pv")
    assert table.out.splitlines()[1].split()[4] == "Released"
    deleted = await peapod("delete", "pv", "task-pv-volume")
    assert deleted.out == 'persistentvolume "task-pv-volume" deleted\n', deleted.err
    with pytest.raises(NotFound):
        await _get(admin, "persistentvolumes", "task-pv-volume", None)


async def _is(admin, resource: str, name: str, phase: str) -> bool:
    return await _phase(admin, resource, name) == phase


async def test_no_volume_for_the_claim_says_why(controllers, tmp_path):
    peapod = cli_for(controllers, tmp_path)
    claim = PVC.replace("  storageClassName: manual\n", "").replace("task-pv-claim", "lonely")
    assert (await peapod("apply", "-f", "-", stdin=claim)).code == 0

    async def event() -> str:
        out = (await peapod("describe", "pvc", "lonely")).out
        return out if "FailedBinding" in out else ""
    out = await eventually(event, "a FailedBinding event")
    assert "no persistent volumes available for this claim and no storage class is set" in out
    classed = PVC.replace("task-pv-claim", "classy")
    assert (await peapod("apply", "-f", "-", stdin=classed)).code == 0

    async def provisioning() -> str:
        out = (await peapod("describe", "pvc", "classy")).out
        return out if "ProvisioningFailed" in out else ""
    out = await eventually(provisioning, "a ProvisioningFailed event")
    assert 'storageclass.storage.k8s.io "manual" not found' in out
    table = (await peapod("get", "pvc")).out
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [["classy", "Pending"],
                                                                     ["lonely", "Pending"]]


async def test_refusals_in_kubernetes_words_store_nothing(apiserver, tmp_path):
    admin, peapod = apiserver["admin"], cli_for(apiserver, tmp_path)
    block = PVC.replace("spec:\n", "spec:\n  volumeMode: Block\n")
    result = await peapod("apply", "-f", "-", stdin=block)
    assert result.code == 1
    assert 'spec.volumeMode: Unsupported value: "Block"' in result.err
    nfs = PV.replace('  hostPath:\n    path: "/mnt/data"\n', "  nfs:\n    server: x\n    path: /\n")
    result = await peapod("apply", "-f", "-", stdin=nfs)
    assert result.code == 1 and "spec.nfs: unknown field" in result.err
    local = PV.replace('  hostPath:\n    path: "/mnt/data"\n', "  local:\n    path: /mnt/disk\n")
    result = await peapod("create", "-f", "-", stdin=local)
    assert "spec.nodeAffinity: Required value: Local volume requires node affinity" in result.err
    modes = PV.replace("    - ReadWriteOnce\n", "    - ReadWriteSometimes\n")
    result = await peapod("apply", "-f", "-", stdin=modes)
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in result.err
    no_size = PVC.replace("      storage: 3Gi\n", "      cpu: 1\n")
    result = await peapod("apply", "-f", "-", stdin=no_size)
    assert "spec.resources[storage]: Required value" in result.err
    for resource in ("persistentvolumes", "persistentvolumeclaims"):
        assert await request(admin, s.api(resource, "list"), {}) == []
    # a claim's spec is immutable after creation (but for the binder's volumeName)
    assert (await peapod("apply", "-f", "-", stdin=PVC)).code == 0
    bigger = PVC.replace("storage: 3Gi", "storage: 5Gi")
    result = await peapod("apply", "-f", "-", stdin=bigger)
    assert result.code == 1 and "spec: Forbidden: spec is immutable after creation" in result.err


async def test_claim_in_use_is_protected_until_the_pod_is_gone(controllers, tmp_path):
    admin, peapod = controllers["admin"], cli_for(controllers, tmp_path)
    assert (await peapod("apply", "-f", "-", stdin=PV + "---\n" + PVC)).code == 0
    await eventually(lambda: _is(admin, "persistentvolumeclaims", "task-pv-claim", "Bound"),
                     "the claim is Bound")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
           "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {
               "claimName": "task-pv-claim"}}],
                    "containers": [{"name": "c", "image": "busybox",
                                    "volumeMounts": [{"name": "v", "mountPath": "/data"}]}]}}
    await request(admin, s.api("pods", "create"), {"object": pod, "namespace": "default"})
    deleted = await peapod("delete", "pvc", "task-pv-claim", "--wait=false")
    assert deleted.code == 0, deleted.err
    table = (await peapod("get", "pvc")).out
    assert table.splitlines()[1].split()[1] == "Terminating"
    assert await _is(admin, "persistentvolumes", "task-pv-volume", "Bound")
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "user"})
    await eventually(lambda: _is(admin, "persistentvolumeclaims", "task-pv-claim", "<gone>"),
                     "the claim goes with its last user")
    await eventually(lambda: _is(admin, "persistentvolumes", "task-pv-volume", "Released"),
                     "and its volume is Released")
