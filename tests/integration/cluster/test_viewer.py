"""A read-only identity (issue 14), made with the identity tooling as an operator would.

``viewer-alice`` is minted by ``python -m peapod.bus.identity ensure`` and put
into the nats-server's users, then used through the real ``peapod`` script as
a context: it may look (get, describe, events, logs, get -w) and every write,
exec, Secret read or stream/bucket manipulation is refused by the server
itself, which the test reads from the server's own error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from peapod.bus import subjects as s
from peapod.bus.auth import server_config, write_cluster_config
from peapod.bus.client import request
from peapod.bus.identity import Credentials
from peapod.bus.replay import read_all
from tests.conftest import TEST_NODES
from tests.integration.cluster.cli import Cli
from tests.integration.cluster.test_kubelet import (
    apply,
    pod_manifest,
    running,
    wait_pod,
)
from tests.natsd import NATSD, free_port

pytestmark = pytest.mark.podman

IMAGE = {"image": "localhost/peapod-busybox:latest", "imagePullPolicy": "IfNotPresent"}


@pytest.fixture
def cluster_creds(tmp_path: Path) -> Iterator[dict]:
    """tests/conftest.py's cluster, plus viewer-alice minted as docs/deploy.md tells."""
    port, http_port = free_port(), free_port()
    state = tmp_path / "state"
    creds = write_cluster_config(str(state), nodes=TEST_NODES, port=port, http_port=http_port)
    alice = tmp_path / "alice.json"
    minted = subprocess.run(
        [sys.executable, "-m", "peapod.bus.identity", "ensure", str(alice),
         "--user", "viewer-alice", "--url", f"nats://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True)
    users = {u: c.public_key for u, c in creds.items()}
    users["viewer-alice"] = json.loads(minted.stdout)["public_key"]
    (state / "nats.conf").write_text(server_config(
        users=users, port=port, http_port=http_port, store_dir=str(state / "jetstream")))
    server = NATSD(state / "nats.conf", http_port)
    server.start()
    try:
        yield {**creds, "viewer-alice": Credentials.load(alice), "alice_file": alice}
    finally:
        server.stop()


async def viewer_connection(creds: Credentials, errors: list[str]) -> nats.NATS:
    async def collect(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(creds.url, nkeys_seed_str=creds.seed, error_cb=collect,
                              inbox_prefix=s.inbox_prefix(creds.user), allow_reconnect=False)


async def refused(errors: list[str], subject: str, verb: str = "Publish") -> None:
    """The server itself said no (not merely: nobody answered)."""
    for _ in range(50):
        # nats-py lower-cases the server's message
        if any(f'permissions violation for {verb.lower()} to "{subject.lower()}"' in e.lower()
               for e in errors):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no permissions violation for {verb} {subject}: {errors}")


async def test_a_viewer_may_look_but_not_touch(ctx, cluster_creds, tmp_path):
    admin = ctx["admin"]
    creds = cluster_creds
    name = f"seen-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [{"name": "c", **IMAGE,
                                          "command": ["sh", "-c", "echo hello; sleep 3600"]}]))
    await wait_pod(ctx, name, running)

    peapod = Cli(tmp_path / "home", server=creds["viewer-alice"].url,
                 credentials=creds["alice_file"])
    listed = await peapod("get", "pods")
    assert listed.code == 0 and name in listed.out, listed
    for verb in (["get", "nodes"], ["get", "ns"], ["describe", "pod", name], ["get", "events"],
                 ["get", "pod", name, "-o", "yaml"]):
        result = await peapod(*verb)
        assert result.code == 0, (verb, result)
    for _ in range(20):
        logs = await peapod("logs", name)
        if "hello" in logs.out:
            break
        await asyncio.sleep(0.2)
    assert logs.out == "hello\n", logs

    # ConfigMaps are for everyone who may look, Secrets are not (Kubernetes' view role)
    for kind, data in (("ConfigMap", {"greeting": "hi"}), ("Secret", {"password": "aHVudGVyMg=="})):
        await request(admin, s.api(f"{kind.lower()}s", "create"), {"object": {
            "apiVersion": "v1", "kind": kind, "metadata": {"name": "app"}, "data": data}})
    configmaps = await peapod("get", "configmaps")
    assert configmaps.code == 0 and "app" in configmaps.out, configmaps
    secrets = await peapod("get", "secrets")
    assert secrets.code == 1 and secrets.err == (
        'Error from server (Forbidden): secrets is forbidden: User "viewer-alice" cannot list '
        'resource "secrets" in API group "" in the namespace "default"\n'), secrets
    assert "aHVudGVyMg" not in secrets.out + secrets.err

    # every write through the CLI fails, and says it was refused
    manifest = json.dumps(pod_manifest("intruder", [{"name": "c", **IMAGE}]))
    for verb, stdin, what in (
            (["create", "-f", "-"], manifest, 'cannot create resource "pods"'),
            (["apply", "-f", "-"], manifest, 'cannot apply resource "pods"'),
            (["delete", "pod", name], None, 'cannot delete resource "pods"'),
            (["exec", name, "--", "id"], None, 'cannot create resource "pods/exec"'),
            (["exec", "-i", name, "--", "cat"], "x", 'cannot create resource "pods/exec"'),
            (["attach", name], None, 'cannot create resource "pods/attach"'),
            (["create", "namespace", "x"], None, 'cannot create resource "namespaces"')):
        result = await peapod(*verb, stdin=stdin, timeout=60)
        assert result.code == 1, (verb, result)
        assert result.err.startswith('Error from server (Forbidden): '), (verb, result.err)
        assert f'User "viewer-alice" {what}' in result.err, (verb, result.err)

    # and straight on the bus: `get -w` reads the watch stream as an ordered consumer
    errors: list[str] = []
    nc = await viewer_connection(creds["viewer-alice"], errors)
    watch = await nc.jetstream().subscribe(s.watch_all("pods", "default"), stream=s.WATCH_STREAM,
                                           ordered_consumer=True)
    seen = await watch.next_msg(timeout=5)
    assert seen.subject.startswith("peapod.watch.pods.default.")
    await watch.unsubscribe()
    # Secrets' changes are not on the watch stream a viewer reads (their own stream is closed
    # to it, below); the ConfigMap made beside the Secret is the positive control
    kept = await read_all(nc.jetstream(), stream=s.WATCH_STREAM, subject="peapod.watch.>")
    kinds = {msg.subject.split(".")[2] for msg in kept}
    assert "configmaps" in kinds and "secrets" not in kinds, kinds
    assert not any(b"aHVudGVyMg" in msg.data for msg in kept)
    assert errors == []
    # while the server refuses each of these
    pod = {"object": pod_manifest("intruder", [{"name": "c", **IMAGE}])}
    attempts = [
        (s.api("pods", "create"), pod), (s.api("pods", "apply"), pod),
        (s.api("pods", "delete"), {"namespace": "default", "name": name}),
        (s.api("pods", "bind"), {"namespace": "default", "name": name, "node": "node-b"}),
        (s.api("namespaces", "create"), {"object": {"kind": "Namespace"}}),
        (s.api("secrets", "get"), {"namespace": "default", "name": "db"}),
        (s.api("secrets", "list"), {}),
        (s.node_api("node-a", "status"), {}),
        (s.kubelet("node-a", "exec"), {"namespace": "default", "name": name, "command": ["id"]}),
        (s.kubelet("node-a", "attach"), {"namespace": "default", "name": name}),
        (s.kubelet_input("node-a", "0" * 32), {"data": "aWQK"}),
        (f"$KV.{s.KV_BUCKET}.pods.default.intruder", pod),
        (f"$JS.API.STREAM.DELETE.{s.KV_STREAM}", {}),
        (f"$JS.API.STREAM.PURGE.{s.EVENTS_STREAM}", {}),
        (f"$JS.API.CONSUMER.DELETE.{s.KV_STREAM}.{s.FANOUT_DURABLE}", {}),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{s.WATCH_STREAM}.mine", {}),
        (f"$JS.API.CONSUMER.CREATE.{s.SECRET_WATCH_STREAM}", {
            "stream_name": s.SECRET_WATCH_STREAM, "config": {"deliver_policy": "all"}}),
        (f"$JS.API.STREAM.MSG.GET.{s.SECRET_WATCH_STREAM}", {"seq": 1}),
        ("peapod.events.default.pod.x", {}),
    ]
    for subject, body in attempts:
        with contextlib.suppress(Exception):
            await nc.request(subject, json.dumps(body).encode(), timeout=0.3)
        await refused(errors, subject)
    for subject in ("peapod.>", f"{s.inbox_prefix('admin')}.>", "_INBOX.>"):
        with contextlib.suppress(Exception):
            sub = await nc.subscribe(subject)
            await nc.flush()
            await sub.unsubscribe()
        await refused(errors, subject, "Subscription")
    await nc.close()

    # nothing happened
    pods = await request(admin, s.api("pods", "list"), {})
    assert [p["metadata"]["name"] for p in pods] == [name]
    assert pods[0]["spec"]["nodeName"] == "node-a"
    js = admin.jetstream()
    await js.consumer_info(s.KV_STREAM, s.FANOUT_DURABLE)
    assert (await js.stream_info(s.EVENTS_STREAM)).state.messages > 0

    # `get -w --resource-version N` reads the oldest change the watch stream kept, and says
    # Expired (not Forbidden) once the stream dropped the changes after N, as its max_age would
    await js.purge_stream(s.WATCH_STREAM, keep=1)
    expired = await peapod("get", "pods", "-w", "--resource-version", "1", timeout=30)
    assert expired.code == 1, expired
    assert expired.err.startswith(
        "Error from server (Expired): too old resource version: 1 ("), expired.err
