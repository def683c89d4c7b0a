"""``peapod drain`` on real podman with two kubelets: kubectl's refusals, then the evictions,
each pod's grace period, the owners' replacements on the other node, and ``--timeout``;
``peapod top`` on the same pods first (sharing the fixture keeps the suite short).

Uses the ``fleet`` fixture of ``test_replicasets_podman.py`` (apiserver, scheduler and two
kubelets in-process, the controller manager as its own process) and the real script.
"""

from __future__ import annotations

import re

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_kubelet import running
from tests.integration.cluster.test_replicasets import pods_of
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    fleet,
    sleeper_rs,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def daemonset() -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "a", "image": IMAGE, "command": ["sleep", "3600"]}]}}}}


def bare(name: str, *, grace: int) -> dict:
    """A pod nobody owns, bound to node-b, that ignores SIGTERM: only its grace period ends it."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": "node-b", "terminationGracePeriodSeconds": grace, "containers": [
                {"name": "c", "image": IMAGE,
                 "command": ["sh", "-c", "trap '' TERM; sleep 3600 & wait"]}]}}


async def on_node(admin, node: str) -> list[dict]:
    return await request(admin, s.api("pods", "list"), {
        "namespace": None, "fieldSelector": f"spec.nodeName={node}"})


async def bound(admin, selector: str, count: int) -> bool:
    pods = await pods_of(admin, selector)
    return len(pods) == count and all(p["spec"].get("nodeName") for p in pods)


async def top_shows_them(cli, names: dict[str, str]) -> None:
    """``peapod top`` from the kubelets' podman stats, in kubectl's tables."""
    usage = r"\d+m\s+\d+Mi"

    async def all_listed() -> str | None:
        out = (await cli("top", "pods")).out
        return out if all(re.search(rf"^{name}\s+{usage}$", out, re.M)
                          for name in names.values()) else None
    pods = await eventually(all_listed, "top pods lists web, agent and solo", timeout=30)
    assert pods.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"], pods
    nodes = await cli("top", "nodes", "--sort-by", "memory")
    lines = nodes.out.splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["node-a", "node-b"]
    assert all(re.fullmatch(r"node-[ab]\s+\d+m\s+\d+%\s+[1-9]\d*Mi\s+\d+%", line)
               for line in lines[1:]), nodes.out
    one = await cli("top", "pods", "solo", "--containers", "-A")
    assert one.out.splitlines()[0].split() == ["NAMESPACE", "POD", "NAME", "CPU(cores)",
                                               "MEMORY(bytes)"]
    assert re.fullmatch(rf"default\s+solo\s+c\s+{usage}", one.out.splitlines()[1]), one.out
    missing = await cli("top", "node", "ghost")
    assert missing.code == 1 and 'nodes "ghost" not found' in missing.err


async def test_drain_refuses_then_evicts_and_owners_replace_elsewhere(fleet, tmp_path):  # noqa: F811
    admin, cli = fleet["admin"], cli_for(fleet, tmp_path)
    rs = sleeper_rs(2)
    rs["spec"]["template"]["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    # one after the other, each placed before the next: the scheduler (no spread constraint)
    # puts a web pod where fewer pods are, ties going to node-a. With an agent on each node,
    # the first web pod goes to node-a, the second to node-b; made at once, the placement
    # followed the controller manager's order (solo and both agents first: both on node-a)
    await request(admin, s.api("daemonsets", "create"), {"object": daemonset()})
    await eventually(lambda: bound(admin, "app=agent", 2), "an agent bound on each node")
    await request(admin, s.api("replicasets", "create"), {"object": rs})
    await eventually(lambda: bound(admin, "app=web", 2), "both web pods bound")
    await request(admin, s.api("pods", "create"), {"object": bare("solo", grace=1)})

    async def started() -> list[dict] | None:
        pods = await on_node(admin, "node-b")
        web = await pods_of(admin)
        return pods if len(pods) == 3 and len(web) == 2 and all(
            running(p) for p in pods + web) else None
    pods = await eventually(started, "web, agent and solo running on node-b", timeout=240)
    names = {p["metadata"]["labels"]["app"]: p["metadata"]["name"] for p in pods}
    await top_shows_them(cli, names)

    refused = await cli("drain", "node-b")
    assert (refused.code, refused.out) == (1, "node/node-b cordoned\n"), refused.err
    errors = [f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
              f"default/{names['agent']}",
              f"cannot delete Pods with local storage (use --delete-emptydir-data to override): "
              f"default/{names['web']}",
              "cannot delete Pods declare no controller (use --force to override): default/solo"]
    assert refused.err.splitlines() == [
        f'error: unable to drain node "node-b" due to error:[{", ".join(errors)}], continuing '
        "command...", "There are pending nodes to be drained:", " node-b", *errors]
    assert {p["metadata"]["uid"] for p in await on_node(admin, "node-b")} == \
        {p["metadata"]["uid"] for p in pods}  # nothing deleted
    node = await request(admin, s.api("nodes", "get"), {"name": "node-b"})
    assert node["spec"]["unschedulable"] is True  # kubectl leaves it cordoned

    drained = await cli("drain", "node-b", "--ignore-daemonsets", "--force",
                        "--delete-emptydir-data", "--timeout", "90s", timeout=120)
    assert drained.code == 0, drained.err
    lines = drained.out.splitlines()
    assert lines[0] == "node/node-b already cordoned" and lines[-1] == "node/node-b drained"
    assert sorted(lines[1:3]) == [f"evicting pod default/{names['solo']}",
                                  f"evicting pod default/{names['web']}"]
    assert sorted(lines[3:5]) == [f"pod/{names['solo']} evicted", f"pod/{names['web']} evicted"]
    assert drained.err == (f"Warning: ignoring DaemonSet-managed Pods: default/{names['agent']}; "
                           "deleting Pods that declare no controller: default/solo\n")
    left = await on_node(admin, "node-b")
    assert [p["metadata"]["name"] for p in left] == [names["agent"]]

    async def replaced_on_a() -> bool:
        web = await pods_of(admin)
        return len(web) == 2 and all(p["spec"]["nodeName"] == "node-a" and running(p)
                                     for p in web)
    await eventually(replaced_on_a, "the ReplicaSet's pod re-created on node-a", timeout=120)

    # --timeout: a pod that ignores SIGTERM lives out its --grace-period of 3 s
    await request(admin, s.api("pods", "create"), {"object": bare("slow", grace=30)})

    async def slow_running() -> bool:
        return running(await request(admin, s.api("pods", "get"), {"namespace": "default",
                                                                    "name": "slow"}))
    await eventually(slow_running, "slow running", timeout=120)
    late = await cli("drain", "node-b", "--ignore-daemonsets", "--force", "--grace-period", "3",
                     "--timeout", "1s")
    assert late.code == 1 and late.out.splitlines() == ["node/node-b already cordoned",
                                                        "evicting pod default/slow"], late.out
    assert re.search(r'^error: unable to drain node "node-b" due to error:drain did not '
                     r"complete within 1s, continuing command\.\.\.$", late.err, re.M), late.err
    assert late.err.splitlines()[-1] == "error: drain did not complete within 1s"
    slow = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "slow"})
    assert slow["metadata"]["deletionGracePeriodSeconds"] == 3
    again = await cli("drain", "node-b", "--ignore-daemonsets", "--force", timeout=120)
    assert again.code == 0 and again.out.splitlines()[-1] == "node/node-b drained", again.err

    await request(admin, s.api("daemonsets", "delete"), {"namespace": "default", "name": "agent"})
