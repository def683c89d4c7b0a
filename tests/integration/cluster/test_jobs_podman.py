"""Jobs on real podman with two kubelets: completions in parallel, a backoff limit, a TTL.

Uses the ``fleet`` fixture of ``test_replicasets_podman.py``.
"""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Invalid, NotFound
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_replicasets_podman import (  # noqa: F401 - a fixture
    IMAGE,
    fleet,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


def job(name: str, script: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "work", "image": IMAGE, "command": ["sh", "-c", script]}]}}}}


async def job_status(admin, name: str) -> dict:
    got = await request(admin, s.api("jobs", "get"), {"namespace": "default", "name": name})
    return got.get("status") or {}


async def condition(admin, name: str, type_: str) -> dict | None:
    st = await job_status(admin, name)
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), None)


async def test_completions_backoff_and_ttl(fleet, tmp_path):  # noqa: F811
    admin = fleet["admin"]
    made = await request(admin, s.api("jobs", "create"), {"object": job(
        "work", "sleep 1", completions=3, parallelism=2)})
    uid = made["metadata"]["uid"]
    assert made["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert made["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"
    await eventually(lambda: condition(admin, "work", "Complete"), "work complete", timeout=120)
    st = await job_status(admin, "work")
    assert st["succeeded"] == 3 and "active" not in st and st["completionTime"]
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default",
                                                        "labelSelector": "job-name=work"})
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    table = await cli_for(fleet, tmp_path)("get", "jobs")
    assert table.out.split()[:8] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "work",
                                     "Complete", "3/3"], table.out

    await request(admin, s.api("jobs", "create"), {"object": job("broken", "exit 3",
                                                                  backoffLimit=1)})
    failed = await eventually(lambda: condition(admin, "broken", "Failed"), "broken failed",
                              timeout=120)
    assert failed["reason"] == "BackoffLimitExceeded"
    assert (await job_status(admin, "broken"))["failed"] == 2

    await request(admin, s.api("jobs", "create"), {"object": job(
        "brief", "true", ttlSecondsAfterFinished=0)})

    async def removed() -> bool:
        try:
            await request(admin, s.api("jobs", "get"), {"namespace": "default", "name": "brief"})
        except NotFound:
            pods = await request(admin, s.api("pods", "list"), {
                "namespace": "default", "labelSelector": "job-name=brief"})
            return not pods
        return False
    await eventually(removed, "the finished Job and its pod removed after its TTL", timeout=120)

    with pytest.raises(Invalid, match="field is immutable"):
        current = await request(admin, s.api("jobs", "get"), {"namespace": "default",
                                                              "name": "work"})
        current["spec"]["completions"] = 5
        await request(admin, s.api("jobs", "update"), {"object": current})
    for name in ("work", "broken"):
        await request(admin, s.api("jobs", "delete"), {"namespace": "default", "name": name})
