"""``peapod apply|get|describe|delete`` of ReplicaSets: the real script, the real cluster."""

from __future__ import annotations

import re

import yaml

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_replicasets import pods_of, replicaset
from tests.waiting import eventually


async def test_apply_get_describe_and_delete_orphan(controllers, tmp_path):
    admin, cli = controllers["admin"], cli_for(controllers, tmp_path)
    manifest = tmp_path / "rs.yaml"
    manifest.write_text(yaml.safe_dump(replicaset(replicas=2)))
    applied = await cli("apply", "-f", str(manifest))
    assert applied.out == "replicaset.apps/web created\n", applied.err
    again = await cli("apply", "-f", str(manifest))
    assert again.out == "replicaset.apps/web unchanged\n", again.err

    async def two_pods() -> bool:
        return len(await pods_of(admin)) == 2
    await eventually(two_pods, "2 pods")

    async def table() -> str | None:
        got = await cli("get", "rs")
        lines = got.out.splitlines()
        return got.out if len(lines) == 2 and re.match(r"^web\s+2\s+2\s+0\s+\d+s$", lines[1]) else None
    out = await eventually(table, "get rs shows 2 current")
    assert out.splitlines()[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    wide = await cli("get", "replicasets", "-o", "wide")
    assert wide.out.splitlines()[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "app=web" in wide.out.splitlines()[1]

    described = await cli("describe", "rs", "web")
    assert re.search(r"^Selector:\s+app=web$", described.out, re.M), described.out
    assert re.search(r"^Replicas:\s+2 current / 2 desired$", described.out, re.M)
    assert re.search(r"^Pods Status:\s+0 Running / 2 Waiting / 0 Succeeded / 0 Failed$",
                     described.out, re.M)
    assert "SuccessfulCreate" in described.out and "replicaset-controller" in described.out
    pod_name = (await pods_of(admin))[0]["metadata"]["name"]
    pod = await cli("describe", "pod", pod_name)
    assert re.search(r"^Controlled By:\s+ReplicaSet/web$", pod.out, re.M), pod.out

    bad = await cli("delete", "rs", "web", "--cascade=sideways")
    assert bad.code == 1 and 'invalid cascade value (sideways)' in bad.err
    deleted = await cli("delete", "rs", "web", "--cascade=orphan")
    assert deleted.code == 0 and deleted.out == 'replicaset.apps "web" deleted\n', deleted.err
    assert (await cli("get", "rs")).err.strip() == "No resources found in default namespace."
    pods = await pods_of(admin)
    assert len(pods) == 2 and not any(p["metadata"].get("ownerReferences") for p in pods)
    assert await request(admin, s.api("replicasets", "list"), {"namespace": "default"}) == []
