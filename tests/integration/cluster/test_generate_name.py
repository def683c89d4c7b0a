"""metadata.generateName against the real apiserver on a real nats-server, and through the CLI."""

from __future__ import annotations

import re

import pytest

from peapod.apiserver import admission
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import AlreadyExists, Invalid
from tests.integration.cluster.cli import cli_for

GENERATED = re.compile(r"^web-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def pod(**metadata) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


async def names(admin) -> list[str]:
    return [p["metadata"]["name"] for p in await request(admin, s.api("pods", "list"), {})]


async def test_create_makes_a_name_from_generate_name_as_kubernetes_does(apiserver):
    admin = apiserver["admin"]
    first = await request(admin, s.api("pods", "create"), {"object": pod(generateName="web-")})
    second = await request(admin, s.api("pods", "create"), {"object": pod(generateName="web-")})
    for created in (first, second):
        assert GENERATED.match(created["metadata"]["name"]), created["metadata"]["name"]
        assert created["metadata"]["generateName"] == "web-"
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert sorted(await names(admin)) == sorted([first["metadata"]["name"],
                                                 second["metadata"]["name"]])


async def test_a_taken_generated_name_is_drawn_again(apiserver, monkeypatch):
    admin = apiserver["admin"]
    await request(admin, s.api("pods", "create"), {"object": pod(name="web-bbbbb")})
    drawn = iter(["web-bbbbb", "web-bbbbb", "web-ccccc"])
    monkeypatch.setattr(admission, "generate_name", lambda prefix: next(drawn))
    created = await request(admin, s.api("pods", "create"), {"object": pod(generateName="web-")})
    assert created["metadata"]["name"] == "web-ccccc"


async def test_when_every_draw_is_taken_the_error_is_kubernetes_one(apiserver, monkeypatch):
    admin = apiserver["admin"]
    await request(admin, s.api("pods", "create"), {"object": pod(name="web-bbbbb")})
    monkeypatch.setattr(admission, "generate_name", lambda prefix: "web-bbbbb")
    with pytest.raises(AlreadyExists) as refused:
        await request(admin, s.api("pods", "create"), {"object": pod(generateName="web-")})
    assert refused.value.message == ('pods "web-bbbbb" already exists, the server was not able '
                                     "to generate a unique name for the object")
    assert await names(admin) == ["web-bbbbb"]


async def test_apply_with_only_generate_name_is_refused_and_stores_nothing(apiserver):
    admin = apiserver["admin"]
    with pytest.raises(Invalid, match=r"^from web-: cannot use generate name with apply$"):
        await request(admin, s.api("pods", "apply"), {"object": pod(generateName="web-")})
    assert await names(admin) == []


async def test_an_invalid_generate_name_is_refused(apiserver):
    with pytest.raises(Invalid, match=r"metadata.generateName: invalid name 'Web-'"):
        await request(apiserver["admin"], s.api("pods", "create"),
                      {"object": pod(generateName="Web-")})


MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  generateName: web-
spec:
  containers:
  - name: c
    image: busybox:1
"""


async def test_the_cli_creates_from_generate_name_and_apply_refuses_it(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    created = await peapod("create", "-f", "-", stdin=MANIFEST)
    assert created.code == 0, created.err
    assert re.fullmatch(r"pod/web-[bcdfghjklmnpqrstvwxz2456789]{5} created\n", created.out)
    applied = await peapod("apply", "-f", "-", stdin=MANIFEST)
    assert (applied.code, applied.out) == (1, "")
    assert applied.err == "error: from web-: cannot use generate name with apply\n"
    assert len(await names(apiserver["admin"])) == 1
    deleted = await peapod("delete", "-f", "-", stdin=MANIFEST)
    assert (deleted.code, deleted.err) == (1, "error: resource name may not be empty\n")
