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
