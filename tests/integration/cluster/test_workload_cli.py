"""kubectl's workload and metadata verbs through the real script: scale, set image, rollout,
label, annotate, cordon, uncordon, get with several kinds, delete -l."""

from __future__ import annotations

import re

import yaml

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_deployments import deployment, get_deploy, pods
from tests.integration.cluster.test_scheduler import register
from tests.waiting import eventually


async def test_scale_set_image_rollout_and_get_all(controllers, tmp_path):
    admin, cli = controllers["admin"], cli_for(controllers, tmp_path)
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml.safe_dump(deployment(2)))
    assert (await cli("apply", "-f", str(manifest))).out == "deployment.apps/web created\n"

    async def count(n: int) -> bool:
        return len(await pods(admin)) == n
    await eventually(lambda: count(2), "2 pods")
    scaled = await cli("scale", "deployment/web", "--replicas=4")
    assert scaled.out == "deployment.apps/web scaled\n", scaled.err
    await eventually(lambda: count(4), "4 pods")
    wrong = await cli("scale", "deploy", "web", "--replicas=1", "--current-replicas=2")
    assert wrong.code == 1 and "Expected replicas to be 2, was 4" in wrong.err

    image = await cli("set", "image", "deployment/web", "web=busybox:2")
    assert image.out == "deployment.apps/web image updated\n", image.err
    missing = await cli("set", "image", "deployment/web", "nope=busybox:2")
    assert missing.code == 1 and 'unable to find container named "nope"' in missing.err
    history = await cli("rollout", "history", "deployment/web")
    assert re.search(r"^2\s+<none>$", history.out, re.M), history.out

    # nothing becomes available without kubelets: status says what it waits for, --timeout ends it
    status = await cli("rollout", "status", "deployment/web", "--timeout", "2s")
    assert status.code == 1 and "Waiting for deployment" in status.out, status.out + status.err
    assert "timed out waiting for the condition" in status.err
    restarted = await cli("rollout", "restart", "deployment/web")
    assert restarted.out == "deployment.apps/web restarted\n"
    got = await get_deploy(admin)
    assert "kubectl.kubernetes.io/restartedAt" in got["spec"]["template"]["metadata"]["annotations"]

    everything = await cli("get", "all")
    assert re.search(r"^pod/web-\S+-\S{5}\s", everything.out, re.M), everything.out
    assert re.search(r"^deployment\.apps/web\s+0/4\s", everything.out, re.M), everything.out
    assert re.search(r"^replicaset\.apps/web-\S+\s", everything.out, re.M), everything.out
    two = await cli("get", "deploy,rs")
    assert two.out.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "DESIRED" in two.out and "pod/" not in two.out
    described = await cli("describe", "deployment", "web")
    assert re.search(r"^StrategyType:\s+RollingUpdate$", described.out, re.M), described.out
    assert re.search(r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$",
                     described.out, re.M)
    assert "NewReplicaSet:" in described.out and "ScalingReplicaSet" in described.out

    deleted = await cli("delete", "deployment", "-l", "nothing=here")
    assert deleted.err.strip() == "No resources found in default namespace."
    labeled = await cli("label", "deployment", "web", "tier=front")
    assert labeled.out == "deployment.apps/web labeled\n", labeled.err
    gone = await cli("delete", "deployments", "-l", "tier=front")
    assert gone.out == 'deployment.apps "web" deleted\n', gone.err
    await eventually(lambda: count(0), "the collector took its ReplicaSets and pods")


async def test_label_annotate_cordon_uncordon(controllers, tmp_path):
    admin, cli = controllers["admin"], cli_for(controllers, tmp_path)
    await register(controllers["creds"], "node-a")
    await request(admin, s.api("pods", "create"), {"object": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}})
    assert (await cli("label", "pod", "p", "env=prod")).out == "pod/p labeled\n"
    refused = await cli("label", "pod", "p", "env=dev")
    assert refused.code == 1
    assert "'env' already has a value (prod), and --overwrite is false" in refused.err
    assert (await cli("label", "pod", "p", "env=dev", "--overwrite")).out == "pod/p labeled\n"
    assert (await cli("label", "pods/p", "env-")).out == "pod/p unlabeled\n"
    assert (await cli("label", "pod", "p", "app=x")).out == "pod/p not labeled\n"
    assert (await cli("annotate", "pod", "p", "note=hi")).out == "pod/p annotated\n"
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "p"})
    assert got["metadata"]["labels"] == {"app": "x"}
    assert got["metadata"]["annotations"] == {"note": "hi"}
    by_selector = await cli("label", "pods", "-l", "app=x", "team=a")
    assert by_selector.out == "pod/p labeled\n", by_selector.err

    assert (await cli("label", "node", "node-a", "disk=ssd")).out == "node/node-a labeled\n"
    assert (await cli("cordon", "node-a")).out == "node/node-a cordoned\n"
    assert (await cli("cordon", "node-a")).out == "node/node-a already cordoned\n"
    nodes = await cli("get", "nodes")
    assert re.search(r"^node-a\s+Ready,SchedulingDisabled\s", nodes.out, re.M), nodes.out
    await register(controllers["creds"], "node-a")  # a kubelet re-registering keeps both
    node = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    assert node["spec"]["unschedulable"] is True and node["metadata"]["labels"]["disk"] == "ssd"
    assert (await cli("uncordon", "node-a")).out == "node/node-a uncordoned\n"
    node = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    assert "unschedulable" not in node["spec"]


async def test_get_ds_and_the_daemon_the_scheduler_binds_to_a_registered_node(
        controllers, scheduler, tmp_path):
    admin, cli = controllers["admin"], cli_for(controllers, tmp_path)
    await register(controllers["creds"], "node-a", labels={"role": "edge"})
    manifest = tmp_path / "ds.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"role": "edge"},
                     "containers": [{"name": "a", "image": "busybox:1"}]}}}}))
    assert (await cli("apply", "-f", str(manifest))).out == "daemonset.apps/agent created\n"

    async def table() -> str | None:
        out = (await cli("get", "ds")).out
        return out if re.search(r"^agent\s+1\s+1\s+0\s+1\s+0\s+role=edge\s", out, re.M) else None
    out = await eventually(table, "get ds: 1 desired, 1 current")
    assert out.splitlines()[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                           "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    async def bound() -> dict | None:
        [pod] = await pods(admin)
        return pod if pod["spec"].get("nodeName") else None
    pod = await eventually(bound, "the scheduler binds the daemon")
    assert pod["spec"]["nodeName"] == "node-a" and pod["metadata"]["name"].startswith("agent-")
    assert "daemonset.apps/agent" in (await cli("get", "all")).out


async def test_describe_daemonset_and_job_as_kubectl(controllers, tmp_path):
    cli = cli_for(controllers, tmp_path)
    await register(controllers["creds"], "node-a")
    template = {"metadata": {"labels": {"app": "agent"}}, "spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "containers": [{"name": "agent", "image": "busybox:1", "command": ["sleep", "3600"]}]}}
    manifest = tmp_path / "ds-job.yaml"
    manifest.write_text(yaml.safe_dump_all([
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
         "spec": {"completions": 2, "backoffLimit": 4, "activeDeadlineSeconds": 600,
                  "template": {"spec": {"restartPolicy": "Never", "containers": [
                      {"name": "pi", "image": "busybox:1", "command": ["true"]}]}}}}]))
    applied = await cli("apply", "-f", str(manifest))
    assert applied.out == "daemonset.apps/agent created\njob.batch/pi created\n", applied.err

    async def job_started() -> bool:
        return (await cli("describe", "job", "pi")).out.count("Start Time:") == 1
    await eventually(job_started, "the job controller started pi")
    ds = (await cli("describe", "ds", "agent")).out
    for line in (r"^Name:\s+agent$", r"^Selector:\s+app=agent$",
                 r"^Node-Selector:\s+kubernetes.io/os=linux$",
                 r"^Number of Nodes Misscheduled:\s+0$", r"^Pods Status:\s+\d+ Running / ",
                 r"^Pod Template:$", r"^\s+agent:$"):
        assert re.search(line, ds, re.M), (line, ds)
    job = (await cli("describe", "job", "pi")).out
    for line in (r"^Name:\s+pi$", r"^Selector:\s+batch.kubernetes.io/controller-uid=\S+$",
                 r"^Parallelism:\s+1$", r"^Completions:\s+2$", r"^Backoff Limit:\s+4$",
                 r"^Active Deadline Seconds:\s+600s$",
                 r"^Pods Statuses:\s+1 Active \(0 Ready\) / 0 Succeeded / 0 Failed$"):
        assert re.search(line, job, re.M), (line, job)
    refused = await cli("describe", "statefulset", "x")
    assert refused.code == 1
