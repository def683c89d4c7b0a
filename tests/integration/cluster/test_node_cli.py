"""``peapod taint``: the real script against the real apiserver, as kubectl words it."""

from __future__ import annotations

import re

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Invalid
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_scheduler import register


async def taints_of(admin, name: str) -> list[dict]:
    return (await request(admin, s.api("nodes", "get"), {"name": name}))["spec"].get("taints", [])


async def test_taint_add_overwrite_remove_and_refusals(apiserver, tmp_path):
    admin, cli = apiserver["admin"], cli_for(apiserver, tmp_path)
    await register(apiserver["creds"], "node-a", labels={"pool": "gpu"})
    await register(apiserver["creds"], "node-b")

    added = await cli("taint", "nodes", "node-a", "dedicated=ml:NoSchedule", "spot:NoExecute")
    assert (added.code, added.out) == (0, "node/node-a tainted\n"), added.err
    taints = await taints_of(admin, "node-a")
    assert taints[1].pop("timeAdded")  # the apiserver stamps NoExecute taints
    assert taints == [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
                      {"key": "spot", "effect": "NoExecute"}]
    again = await cli("taint", "node", "node-a", "dedicated=web:NoSchedule")
    assert again.code == 1 and again.err == (
        "error: node node-a already has dedicated taint(s) with same effect(s) and --overwrite "
        "is false\n")
    over = await cli("taint", "node/node-a", "dedicated=web:NoSchedule", "--overwrite")
    assert over.out == "node/node-a modified\n", over.err
    assert (await taints_of(admin, "node-a"))[0]["value"] == "web"
    described = await cli("describe", "node", "node-a")
    assert re.search(r"^Taints:\s+dedicated=web:NoSchedule\n\s+spot:NoExecute$", described.out,
                     re.M), described.out

    missing = await cli("taint", "nodes", "node-a", "nothing:NoSchedule-")
    assert missing.code == 1 and missing.err == 'error: taint "nothing:NoSchedule" not found\n'
    assert len(await taints_of(admin, "node-a")) == 2  # nothing written
    one = await cli("taint", "nodes", "node-a", "spot:NoExecute-")
    assert one.out == "node/node-a untainted\n", one.err
    by_key = await cli("taint", "nodes", "node-a", "dedicated-")
    assert by_key.out == "node/node-a untainted\n", by_key.err
    assert await taints_of(admin, "node-a") == []

    # -l: the nodes whose labels match; a failing node does not stop the others (--all)
    selected = await cli("taint", "nodes", "-l", "pool=gpu", "gpu=yes:PreferNoSchedule")
    assert selected.out == "node/node-a tainted\n", selected.err
    every = await cli("taint", "nodes", "--all", "gpu=yes:PreferNoSchedule")
    assert every.code == 1 and every.out == "node/node-b tainted\n"
    assert "node node-a already has gpu taint(s)" in every.err

    for words, message in (
            (["pods", "p", "k=v:NoSchedule"], 'error: invalid resource type pods, only ["node" '
                                              '"nodes"] are supported'),
            (["nodes", "node-a"], "error: at least one taint update is required"),
            (["nodes", "node-a", "k=v:Always"], "error: invalid taint effect: Always"),
            (["nodes", "k=v:NoSchedule"], "error: at least one resource name must be specified"),
            (["nodes", "node-a", "k=v:NoSchedule", "node-b"],
             "error: all resources must be specified before taint changes: node-b"),
            (["nodes", "ghost", "k=v:NoSchedule"], 'Error from server (NotFound): nodes "ghost" '
                                                   "not found")):
        refused = await cli("taint", *words)
        assert refused.code == 1 and refused.err.startswith(message), (words, refused.err)
        assert not refused.out


async def test_apiserver_refuses_bad_and_duplicate_taints(apiserver):
    admin = apiserver["admin"]
    await register(apiserver["creds"], "node-a")
    node = await request(admin, s.api("nodes", "get"), {"name": "node-a"})
    for taints, message in (
            ([{"key": "a b", "effect": "NoSchedule"}], "spec.taints[0].key: invalid taint key"),
            ([{"key": "k", "value": "-x", "effect": "NoSchedule"}],
             "spec.taints[0].value: invalid taint value"),
            ([{"key": "k", "effect": "NoSchedule"}, {"key": "k", "value": "v",
                                                      "effect": "NoSchedule"}],
             'spec.taints[1]: Duplicate value: "k:NoSchedule"')):
        node["spec"]["taints"] = taints
        with pytest.raises(Invalid, match=re.escape(message)):
            await request(admin, s.api("nodes", "update"), {"object": node})
    assert await taints_of(admin, "node-a") == []
