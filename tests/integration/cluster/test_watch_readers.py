"""``peapod get -w`` against junk on the real watch stream.

Only the apiserver (and the admin) publish on ``peapod.watch.>``, and the
fan-out republishes only values that are the object their key names; but a
message that gets there anyway must not end everyone's watch: the reader
skips it with one warning line on stderr and keeps printing. The junk is
published with the admin's credentials; the real ``peapod`` script watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from tests.integration.cluster.test_event_readers import PEAPOD, _line, cli_env
from tests.integration.cluster.test_fanout import pod

JUNK = [
    b"this is not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    json.dumps({**pod("typed"), "spec": "containers"}).encode(),
    json.dumps({**pod("extra"), "status": {"phase": "Running", "mood": "good"}}).encode(),
]


async def test_get_w_skips_junk_with_one_warning_each_and_keeps_watching(apiserver, tmp_path):
    admin = apiserver["admin"]
    js = jetstream(admin)
    await request(admin, s.api("pods", "create"), {"object": pod("before")})
    env = cli_env(tmp_path, apiserver["creds"]["admin"].url)
    proc = await asyncio.create_subprocess_exec(PEAPOD, "get", "pods", "-w", env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert (await _line(proc.stdout)).split()[:2] == ["NAME", "READY"]
        assert (await _line(proc.stdout)).startswith("before ")  # listed: the watch is on
        for body in JUNK:
            await js.publish(s.watch("pods", "default", "junk"), body)
        await request(admin, s.api("pods", "create"), {"object": pod("after")})
        warnings = [await _line(proc.stderr) for _ in JUNK]
        assert all(w.startswith("warning: skipped message ") for w in warnings), warnings
        assert all(s.watch("pods", "default", "junk") in w for w in warnings), warnings
        assert "not JSON" in warnings[0] and "not JSON" in warnings[1]
        assert "not a Pod: a JSON list, not an object" in warnings[2]
        assert "spec:" in warnings[3] and "status.mood: unknown field" in warnings[4]
        assert (await _line(proc.stdout)).startswith("after ")
        assert proc.returncode is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert (await proc.stderr.read()) == b""  # one line per junk message, nothing else
