"""A node's name is a DNS label: the apiserver refuses any other, in Kubernetes' words.

Kubernetes allows a DNS subdomain (``pi.x``); peapod does not, because the
name is also its kubelet's NATS user and subjects. Registering such a Node,
binding a pod to it, or creating a pod with it as ``spec.nodeName`` is
Invalid, and nothing is stored.
"""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Invalid

RULE = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
BAD = ["pi.x", "Pi", "pi_x", "a" * 64, "-pi"]


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, node_name: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox:1"}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("name", BAD)
async def test_registering_a_node_whose_name_is_not_a_dns_label_is_invalid(apiserver, name):
    admin = apiserver["admin"]
    with pytest.raises(Invalid) as refused:
        await request(admin, s.node_api(name, "register"), {"object": node(name)})
    assert refused.value.message.startswith(
        f'Node "{name}" is invalid: metadata.name: Invalid value: "{name}": {RULE}')
    assert await request(admin, s.api("nodes", "list"), {}) == []


@pytest.mark.parametrize("name", BAD)
async def test_binding_to_or_creating_on_such_a_node_is_invalid(apiserver, name):
    admin = apiserver["admin"]
    await request(admin, s.api("pods", "create"), {"object": pod("db")})
    with pytest.raises(Invalid) as refused:
        await request(admin, s.api("pods", "bind"), {"namespace": "default", "name": "db",
                                                     "nodeName": name})
    assert refused.value.message.startswith(
        f'Binding "db" is invalid: target.name: Invalid value: "{name}": {RULE}')
    got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": "db"})
    assert "nodeName" not in got["spec"]
    with pytest.raises(Invalid) as refused:
        await request(admin, s.api("pods", "create"), {"object": pod("web", name)})
    # a name that is not even a DNS subdomain is refused by the Pod's own validation first
    assert "spec.nodeName: " in refused.value.message and name in refused.value.message
    if "." in name or len(name) > 63:
        assert f'Pod "web" is invalid: spec.nodeName: Invalid value: "{name}": {RULE}' in \
            refused.value.message
    listed = await request(admin, s.api("pods", "list"), {})
    assert [p["metadata"]["name"] for p in listed] == ["db"]


async def test_a_dns_label_node_still_registers_and_binds(apiserver):
    admin = apiserver["admin"]
    await request(admin, s.node_api("pi-1", "register"), {"object": node("pi-1")})
    await request(admin, s.api("pods", "create"), {"object": pod("db")})
    bound = await request(admin, s.api("pods", "bind"), {"namespace": "default", "name": "db",
                                                         "nodeName": "pi-1"})
    assert bound["spec"]["nodeName"] == "pi-1"
