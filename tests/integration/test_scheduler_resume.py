"""The scheduler across a nats-server restart: its informers resume and it binds again.

A pod created while the scheduler's consumers are gone (the server restarted
and forgot them) is still seen, from the last revision the scheduler had,
and bound once; nothing was restarted but the server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from peapod.apiserver.main import run as run_apiserver
from peapod.apiserver.store import ensure_jetstream
from peapod.bus import subjects as s
from peapod.bus.auth import write_cluster_config
from peapod.bus.client import connect, jetstream, request
from peapod.scheduler.main import run as run_scheduler
from tests.integration.cluster.test_scheduler import pod, register, wait_for_node_name
from tests.natsd import NATSD, free_port


async def answering(creds, timeout: float = 15):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            admin = await connect(creds["admin"], name="test-admin")
            await request(admin, s.api("nodes", "list"), {}, timeout=0.5)
            return admin
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_the_scheduler_binds_a_pod_created_after_a_server_restart(tmp_path: Path):
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path / "state"), nodes=["node-a", "node-b"], port=port,
                                 http_port=http_port)
    natsd = NATSD(tmp_path / "state" / "nats.conf", http_port)
    natsd.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_apiserver(creds["apiserver"], stop=stop))]
    try:
        admin = await answering(creds)
        tasks.append(asyncio.create_task(run_scheduler(creds["scheduler"], stop=stop)))
        await register(creds, "node-a")
        await request(admin, s.api("pods", "create"), {"object": pod("before")})
        assert await wait_for_node_name(admin, "before") == "node-a"
        await admin.close()
        with capture_logs() as logs:
            await asyncio.to_thread(natsd.stop)
            await asyncio.to_thread(natsd.start)
            admin = await answering(creds)
            # the lease bucket lived in the server's memory, and only an apiserver's start
            # creates it: do what a restarted apiserver would (see the report of this change)
            await ensure_jetstream(jetstream(admin))
            await register(creds, "node-a")
            await request(admin, s.api("pods", "create"), {"object": pod("after")})
            assert await wait_for_node_name(admin, "after", timeout=30) == "node-a"
        resumed = [e for e in logs if e["event"] == "watch_interrupted"
                   and e.get("bucket") == s.KV_BUCKET]
        assert resumed, "the scheduler's informers never noticed the restart"
        await admin.close()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        natsd.stop()
