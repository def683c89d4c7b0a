"""``drain -l`` and ``--pod-selector``: the real script against the real apiserver.

No kubelet runs: the pods are bound by name, and ``--grace-period 0`` deletes them at
once (as Kubernetes does with a zero grace period), so what is tested is which nodes are
cordoned and which pods go, in kubectl's words. Evictions on real podman are in
``test_drain_podman.py``.
"""

from __future__ import annotations

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_scheduler import register


def bound(name: str, node: str, app: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1"}]}}


async def state(admin) -> tuple[dict[str, bool], list[str]]:
    nodes = await request(admin, s.api("nodes", "list"), {})
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    return ({n["metadata"]["name"]: bool(n["spec"].get("unschedulable")) for n in nodes},
            sorted(p["metadata"]["name"] for p in pods))


async def test_drain_by_node_selector_and_pod_selector(apiserver, tmp_path):
    admin, cli = apiserver["admin"], cli_for(apiserver, tmp_path)
    for name in ("node-a", "node-b"):
        await register(apiserver["creds"], name, labels={"zone": "x"})
    for name, node, app in (("web-a", "node-a", "web"), ("db-a", "node-a", "db"),
                            ("web-b", "node-b", "web")):
        await request(admin, s.api("pods", "create"), {"object": bound(name, node, app)})
    before = await state(admin)

    both = await cli("drain", "node-a", "-l", "zone=x")
    assert (both.code, both.err) == (
        1, "error: cannot specify both a node name and a --selector option\n")
    neither = await cli("drain")
    assert (neither.code, neither.err) == (1, "error: USAGE: drain NODE [flags]\n")
    bad = await cli("drain", "-l", "zone=x", "--pod-selector", "app in (")
    assert bad.code == 1 and bad.err.startswith("error: "), bad.err
    none = await cli("drain", "-l", "zone=z")
    assert (none.code, none.out, none.err) == (0, "", "No resources found\n")
    assert await state(admin) == before  # nothing written by a refused drain

    refused = await cli("drain", "-l", "zone=x")  # pods no controller owns, and no --force
    assert refused.code == 1
    assert refused.out.splitlines() == ["node/node-a cordoned", "node/node-b cordoned"]
    assert refused.err.splitlines()[:4] == [
        'error: unable to drain node "node-a" due to error:cannot delete Pods declare no '
        "controller (use --force to override): default/db-a, default/web-a, continuing "
        "command...", "There are pending nodes to be drained:", " node-a", " node-b"], refused.err
    assert await state(admin) == ({"node-a": True, "node-b": True}, before[1])

    drained = await cli("drain", "-l", "zone=x", "--pod-selector", "app=web", "--force",
                        "--grace-period", "0")
    assert drained.code == 0, drained.err
    assert drained.out.splitlines() == [
        "node/node-a already cordoned", "node/node-b already cordoned",
        "evicting pod default/web-a", "pod/web-a evicted", "node/node-a drained",
        "evicting pod default/web-b", "pod/web-b evicted", "node/node-b drained"]
    assert await state(admin) == ({"node-a": True, "node-b": True}, ["db-a"])


async def test_drain_by_selector_leaves_other_nodes_alone(apiserver, tmp_path):
    admin, cli = apiserver["admin"], cli_for(apiserver, tmp_path)
    for name, zone in (("node-a", "x"), ("node-b", "y")):
        await register(apiserver["creds"], name, labels={"zone": zone})
        await request(admin, s.api("pods", "create"), {"object": bound(f"web-{name}", name,
                                                                         "web")})
    drained = await cli("drain", "-l", "zone=x", "--force", "--grace-period", "0")
    assert drained.code == 0, drained.err
    assert drained.out.splitlines()[-1] == "node/node-a drained"
    assert await state(admin) == ({"node-a": True, "node-b": False}, ["web-node-b"])
