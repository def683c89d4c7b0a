"""Kubernetes' documentation examples for ConfigMaps and the downward API, run on real podman.

The manifests of tests/unit/api/test_config_doc_examples.py, with one change:
the image is the local busybox (no registry is reachable here). Each pod's
log must read what the documentation page says it prints.
"""

from __future__ import annotations

import base64
import copy

import pytest
import yaml

from peapod.bus import subjects as s
from peapod.bus.client import request
from tests.unit.api import test_config_doc_examples as docs
from tests.waiting import eventually

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def local(manifest: str) -> dict:
    doc = copy.deepcopy(yaml.safe_load(manifest))
    for container in doc["spec"]["containers"]:
        container["image"] = BUSYBOX
        container["imagePullPolicy"] = "IfNotPresent"
    return doc


async def run(ctx: dict, manifest: str) -> str:
    doc = local(manifest)
    await request(ctx["admin"], s.api("pods", "create"), {"object": doc})
    return str(doc["metadata"]["name"])


async def log_of(ctx: dict, name: str) -> str:
    pod = await request(ctx["admin"], s.api("pods", "get"), {"namespace": "default",
                                                              "name": name})
    if not (pod.get("status", {}).get("containerStatuses") or [{}])[0].get("containerID"):
        return ""
    result = await request(ctx["admin"], s.kubelet("node-a", "logs"), {
        "namespace": "default", "name": name, "container": None, "follow": False,
        "tail": None, "previous": False})
    return base64.b64decode(result["data"]).decode()


async def shows(ctx: dict, name: str, text: str) -> None:
    async def check() -> bool:
        return text in await log_of(ctx, name)
    await eventually(check, timeout=60)


async def test_configmap_values_in_env_and_command_and_in_a_volume(ctx):
    await request(ctx["admin"], s.api("configmaps", "create"),
                  {"object": yaml.safe_load(docs.CONFIGMAP_MULTIKEYS)})
    name = await run(ctx, docs.CONFIGMAP_ENV_VAR_VALUE_FROM)
    await shows(ctx, name, "very charm\n")  # the page: "very charm"
    assert await log_of(ctx, name) == "very charm\n"
    volume = docs.CONFIGMAP_VOLUME_SPECIFIC_KEY.replace("name: dapi-test-pod", "name: keys-pod")
    await shows(ctx, await run(ctx, volume), "very")  # the page: "very"


async def test_downward_api_resources_in_env_and_in_files(ctx):
    # the page: 1, 1, 33554432, 67108864 (CPU rounded up to whole cores)
    await shows(ctx, await run(ctx, docs.DAPI_ENVARS_RESOURCEFIELDREF),
                "1\n1\n33554432\n67108864\n")
    # the page: 250, 125, 64, 32 (divisors 1m and 1Mi)
    await shows(ctx, await run(ctx, docs.DAPI_VOLUME_RESOURCES), "\n250\n125\n64\n32")
    name = await run(ctx, docs.DAPI_VOLUME)
    await shows(ctx, name, 'cluster="test-cluster1"\nrack="rack-22"\nzone="us-est-coast"')
    await shows(ctx, name, 'build="two"\nbuilder="john-doe"')
