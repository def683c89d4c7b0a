"""``peapod get -w --resource-version N``: the changes after N, no list first (a watch's
resume, as a Kubernetes watch from a resourceVersion), and 410 Expired once the watch
stream no longer holds the change after N. Real nats-server, apiserver and script."""

from __future__ import annotations

import asyncio
import contextlib

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.replay import read_all
from peapod.cli.client import Client
from peapod.errors import Expired
from tests.integration.cluster.cli import cli_for
from tests.integration.cluster.test_event_readers import PEAPOD, _line, cli_env
from tests.integration.cluster.test_fanout import pod


async def _watch(apiserver: dict, tmp_path, resource: str,
                 since: int) -> asyncio.subprocess.Process:
    """`peapod get RESOURCE -w --resource-version SINCE -o name`, as the admin."""
    return await asyncio.create_subprocess_exec(
        PEAPOD, "get", resource, "-w", "--resource-version", str(since), "-o", "name",
        env=cli_env(tmp_path, apiserver["creds"]["admin"].url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_a_watch_resumes_after_a_resource_version(apiserver, tmp_path):
    admin = apiserver["admin"]
    first = await request(admin, s.api("pods", "create"), {"object": pod("first")})
    since = int(first["metadata"]["resourceVersion"])
    await request(admin, s.api("pods", "create"), {"object": pod("second")})
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "first"})

    proc = await _watch(apiserver, tmp_path, "pods", since)
    assert proc.stdout is not None
    try:
        # after `since`: second's creation, then first's deletion; first's creation is not shown
        assert [(await _line(proc.stdout)).strip() for _ in range(2)] == ["pod/second", "pod/first"]
        await request(admin, s.api("pods", "create"), {"object": pod("third")})
        assert (await _line(proc.stdout)).strip() == "pod/third"  # and it carries on
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)

    peapod = cli_for(apiserver, tmp_path)
    alone = await peapod("get", "pods", "--resource-version", "3")
    assert (alone.code, alone.err) == (
        1, "error: --resource-version is for a watch (-w): the changes after that version\n")
    bad = await peapod("get", "pods", "-w", "--resource-version", "x")
    assert bad.code == 1 and "is not a non-negative integer" in bad.err  # kubectl: 1


async def test_a_resource_version_the_stream_dropped_is_expired(apiserver):
    admin = apiserver["admin"]
    made = [await request(admin, s.api("pods", "create"), {"object": pod(name)})
            for name in ("a", "b", "c")]
    js = jetstream(admin)

    async def newest() -> int | None:
        info = await js.stream_info(s.WATCH_STREAM)
        return s.watch_revision((await js.get_msg(s.WATCH_STREAM, info.state.last_seq)).headers)
    for _ in range(100):  # the fan-out republishes each change a moment after it is stored
        if await newest() == int(made[-1]["metadata"]["resourceVersion"]):
            break
        await asyncio.sleep(0.05)
    # what an hour's max_age does to old changes: all but the newest two (b and c) are gone
    await js.purge_stream(s.WATCH_STREAM, keep=2)
    oldest = s.watch_revision((await js.get_msg(
        s.WATCH_STREAM, (await js.stream_info(s.WATCH_STREAM)).state.first_seq)).headers)
    assert oldest == int(made[1]["metadata"]["resourceVersion"])
    client = Client(admin, namespace="default")
    try:
        await client.watch("pods", since=oldest - 2)
        raise AssertionError("a dropped change was not noticed")
    except Expired as exc:
        assert exc.message == f"too old resource version: {oldest - 2} ({oldest - 1})"
    changes = await client.watch("pods", since=oldest - 1)  # the next one is still kept
    _kind, obj = await asyncio.wait_for(anext(changes), 5)
    assert obj.metadata.resource_version == str(oldest)
    await changes.aclose()


async def test_the_admin_watches_secrets_on_their_own_stream(apiserver, tmp_path):
    """A Secret's changes go to PEAPOD_SECRET_WATCH (a viewer reads PEAPOD_WATCH, which holds
    none): `get secrets -w` follows that stream and resumes on it after a version."""
    admin = apiserver["admin"]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "watched"},
              "data": {"k": "dg=="}}
    made = await request(admin, s.api("secrets", "create"), {"object": secret})
    since = int(made["metadata"]["resourceVersion"]) - 1
    proc = await _watch(apiserver, tmp_path, "secrets", since)
    assert proc.stdout is not None
    try:
        assert (await _line(proc.stdout)).strip() == "secret/watched"
        await request(admin, s.api("secrets", "delete"), {"namespace": "default",
                                                          "name": "watched"})
        assert (await _line(proc.stdout)).strip() == "secret/watched"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    js = jetstream(admin)
    subjects = [m.subject for m in await read_all(js, stream=s.SECRET_WATCH_STREAM,
                                                   subject="peapod.secretwatch.>")]
    assert subjects[-2:] == ["peapod.secretwatch.secrets.default.watched"] * 2
    assert not [m for m in await read_all(js, stream=s.WATCH_STREAM, subject="peapod.watch.>")
                if ".secrets." in m.subject]
