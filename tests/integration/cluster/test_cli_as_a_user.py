"""What a Kubernetes user types, through the real ``peapod`` script and a real apiserver.

Each test is something found by following README.md and docs/ as a new user: a flag
that was dropped, a ``TYPE/NAME`` kubectl takes, an output format. Bad input is one
line in kubectl's words, exit code 1, and nothing changed.
"""

from __future__ import annotations

import yaml

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.integration.cluster.cli import cli_for

IMAGE = "localhost/peapod-busybox:latest"


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}


async def test_delete_pod_with_a_cascade_other_than_background_is_refused_not_dropped(
        apiserver, tmp_path):
    """kubectl sends --cascade as propagationPolicy; the CLI used to drop it for pods."""
    cli = cli_for(apiserver, tmp_path)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(pod("db")))
    assert (await cli("apply", "-f", str(manifest))).code == 0
    for cascade in ("orphan", "foreground"):
        refused = await cli("delete", "pod", "db", f"--cascade={cascade}")
        assert (refused.code, refused.out) == (1, ""), refused
        assert refused.err == (f'error: pods "db": propagationPolicy {cascade.capitalize()}: peapod '
                               "deletes pods in the background only (--cascade=background)\n")
        assert await request(apiserver["admin"], s.api("pods", "get"), {"namespace": "default", "name": "db"})
    deleted = await cli("delete", "pod", "db", "--cascade=background", "--wait=false")
    assert (deleted.code, deleted.out) == (0, 'pod "db" deleted\n'), deleted


async def test_get_prints_jsonpath_custom_columns_and_kubectls_names(apiserver, tmp_path):
    cli = cli_for(apiserver, tmp_path)
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(yaml.safe_dump_all([pod("a", app="web"), pod("b", app="db")]))
    assert (await cli("apply", "-f", str(manifest))).code == 0
    one = await cli("get", "pod", "a", "-o", "jsonpath={.metadata.name}")
    assert (one.code, one.out, one.err) == (0, "a", "")  # no newline after a template, as kubectl
    listed = await cli("get", "pods", "-o",
                       'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.app}{"\\n"}{end}')
    assert listed.out == "a=web\nb=db\n", listed
    columns = await cli("get", "pods", "-o", "custom-columns=NAME:.metadata.name,APP:.metadata."
                        "labels.app,NODE:.spec.nodeName")
    assert [line.split() for line in columns.out.splitlines()] == [
        ["NAME", "APP", "NODE"], ["a", "web", "<none>"], ["b", "db", "<none>"]], columns
    created = await cli("create", "priorityclass", "high", "--value=10")
    assert created.code == 0, created
    named = await cli("get", "pc", "high", "-o", "name")
    assert named.out == "priorityclass.scheduling.k8s.io/high\n", named
    for output, line in (("yml", 'error: unable to match a printer suitable for the output format '
                          '"yml", allowed formats are: custom-columns,json,jsonpath,name,wide,yaml'),
                         ("jsonpath={.items[0", "error: error parsing jsonpath {.items[0, "
                          "unclosed action")):
        refused = await cli("get", "pods", "-o", output)
        assert (refused.code, refused.out, refused.err) == (1, "", line + "\n"), refused


async def test_logs_exec_and_delete_take_type_slash_name_as_kubectl(apiserver, tmp_path):
    cli = cli_for(apiserver, tmp_path)
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(yaml.safe_dump_all([pod("a"), pod("b")]))
    assert (await cli("apply", "-f", str(manifest))).code == 0
    for argv in (("logs", "pod/nope"), ("exec", "pod/nope", "--", "true"), ("attach", "po/nope")):
        missing = await cli(*argv)
        assert (missing.code, missing.err) == (
            1, 'Error from server (NotFound): pods "nope" not found\n'), (argv, missing)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": pod("x")["spec"]}}}
    manifest.write_text(yaml.safe_dump(deployment))
    assert (await cli("apply", "-f", str(manifest))).code == 0
    none = await cli("logs", "deploy/web")  # no controller manager here: it has no pods
    assert none.err == "Error from server (NotFound): no pods found for deployment.apps/web\n"
    mixed = await cli("delete", "pod/a", "b")
    assert (mixed.code, mixed.err) == (
        1, "error: arguments in resource/name form must have a single resource and name\n")
    deleted = await cli("delete", "pod/a", "pod/b", "deploy/web", "--wait=false")
    assert deleted.out == ('pod "a" deleted\npod "b" deleted\n'
                           'deployment.apps "web" deleted\n'), deleted
    assert not await request(apiserver["admin"], s.api("pods", "list"), {"namespace": "default"})
