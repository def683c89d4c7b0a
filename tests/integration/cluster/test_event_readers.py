"""The CLI's event readers against junk on the real events stream.

Only the apiserver (and the admin) may publish on ``peapod.events.>``, but
anything that does get there (an old writer, an admin's typo) must not make
``get events``, ``events``, ``events -f`` or ``describe`` fail for everyone
until the stream's retention drops it: each reader skips such a message with
one warning line on stderr and carries on. The junk is published with the
admin's credentials into the real stream, and the real ``peapod`` script
reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from peapod.api import now_rfc3339
from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.cli.context import save_local_context

PEAPOD = str(Path(sys.executable).parent / "peapod")
SUBJECT = s.event("default", "Pod", "db")


def event(reason: str, message: str, *, uid: str = "u-1", **changes: object) -> dict:
    now = now_rfc3339()
    doc = {"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": f"db.{reason.lower()}", "namespace": "default",
                        "creationTimestamp": now},
           "involvedObject": {"kind": "Pod", "namespace": "default", "name": "db", "uid": uid,
                              "apiVersion": "v1"},
           "reason": reason, "message": message, "type": "Normal",
           "source": {"component": "kubelet", "host": "node-a"},
           "firstTimestamp": now, "lastTimestamp": now, "count": 1}
    return {**doc, **changes}


# one of each kind of junk: not JSON, not UTF-8, the wrong shape, an invalid Event, an Event
# whose time does not parse (which the printers would trip over), and one with no name
JUNK = [
    b"this is not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    json.dumps({"kind": "Pod", "metadata": {"name": "db"}}).encode(),
    json.dumps(event("Odd", "count is text", count="many")).encode(),
    json.dumps(event("Odd", "bad time", firstTimestamp="yesterday")).encode(),
    json.dumps(event("Odd", "nameless", metadata={"namespace": "default"})).encode(),
]


def cli_env(tmp_path: Path, url: str) -> dict[str, str]:
    home = tmp_path / "cli-home"
    home.mkdir()
    config = save_local_context(server=url, credentials=tmp_path / "state" / "creds" / "admin.json",
                                path=home / "config")
    env = {**os.environ, "PEAPOD_HOME": str(home), "PEAPOD_CONFIG": str(config.path)}
    env.pop("PEAPOD_CONTEXT", None)
    return env


async def peapod(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(PEAPOD, *args, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def publish(js, *bodies: bytes) -> None:
    for body in bodies:
        await js.publish(SUBJECT, body)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: skipped message ")]


async def test_get_events_events_and_describe_skip_junk_with_one_warning_each(apiserver, tmp_path):
    admin = apiserver["admin"]
    js = jetstream(admin)
    pod = await request(admin, s.api("pods", "create"), {"object": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
        "spec": {"containers": [{"name": "db", "image": "mongo:3.3"}]}}})
    uid = pod["metadata"]["uid"]
    await publish(js, json.dumps(event("Pulled", "pulled before the junk", uid=uid)).encode(), *JUNK,
                  json.dumps(event("Started", "started after the junk", uid=uid)).encode())
    env = cli_env(tmp_path, apiserver["creds"]["admin"].url)

    for args in (("get", "events"), ("events",), ("get", "events", "-A")):
        code, out, err = await peapod(env, *args)
        assert code == 0, err
        assert "pulled before the junk" in out and "started after the junk" in out, out
        assert len(warnings(err)) == len(JUNK) == len(err.splitlines()), err
        assert all(SUBJECT in line for line in warnings(err)), err
    code, out, err = await peapod(env, "describe", "pod", "db")
    assert code == 0, err
    assert "pulled before the junk" in out and "started after the junk" in out, out
    assert len(warnings(err)) == len(JUNK), err
    # each warning names why, on one line, with the bytes of the junk kept off the terminal
    code, out, err = await peapod(env, "events")
    lines = warnings(err)
    assert "not JSON" in lines[0] and "not JSON" in lines[1]
    assert "a JSON list, not an object" in lines[2]
    assert "involvedObject: required value" in lines[3]
    assert "count:" in lines[4] and "firstTimestamp: invalid value 'yesterday'" in lines[5]
    assert "metadata.name: required value" in lines[6]


async def _line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), 30)).decode()


async def test_events_follow_skips_junk_and_keeps_following(apiserver, tmp_path):
    js = jetstream(apiserver["admin"])
    # the backlog ends on junk: the table of what came before is still printed
    await publish(js, json.dumps(event("Pulled", "in the backlog")).encode(), *JUNK)
    env = cli_env(tmp_path, apiserver["creds"]["admin"].url)
    proc = await asyncio.create_subprocess_exec(PEAPOD, "events", "-f", env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert (await _line(proc.stdout)).split()[:2] == ["LAST", "SEEN"]
        assert "in the backlog" in await _line(proc.stdout)
        for _ in JUNK:
            assert (await _line(proc.stderr)).startswith("warning: skipped message ")
        # junk while following: one warning, and the next event still arrives
        await publish(js, b"{not json either", json.dumps(event("Started", "followed")).encode())
        assert "not JSON" in await _line(proc.stderr)
        assert "followed" in await _line(proc.stdout)
        assert proc.returncode is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
