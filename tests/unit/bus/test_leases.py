"""Heartbeat leases followed through the informer, as the scheduler reads them."""

from __future__ import annotations

import asyncio
import time

from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream
from peapod.bus.leases import Leases
from tests.unit.bus.conftest import Server


async def test_a_renewal_is_live_by_the_servers_stamp_and_a_deletion_forgets_it(server: Server):
    admin = await connect(server.creds["admin"], name="test-admin")
    kv = await jetstream(admin).create_key_value(bucket=s.LEASE_BUCKET)
    await kv.put("node-a", b'{"holderIdentity": "node-a"}')
    nc = await connect(server.creds["scheduler"], name="test-scheduler")
    leases, woken = Leases(), []
    task = asyncio.create_task(leases.watch(jetstream(nc), on_alive=lambda: woken.append(1)))
    try:
        for _ in range(200):
            if "node-a" in leases.renewed:
                break
            await asyncio.sleep(0.02)
        assert abs(leases.renewed["node-a"] - time.time()) < 5
        assert leases.live(time.time()) == {"node-a"}
        assert leases.live(time.time() + s.LEASE_DURATION_SECONDS + 5) == set()
        await kv.put("node-b", b"not json: a lease's value is never read")
        await kv.put("node-a", b"{}")  # a renewal of a live node does not wake anyone
        await kv.delete("node-a")
        for _ in range(200):
            if "node-b" in leases.renewed and "node-a" not in leases.renewed:
                break
            await asyncio.sleep(0.02)
        assert set(leases.renewed) == {"node-b"}
        assert len(woken) == 2  # node-a, then node-b came alive
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nc.close()
        await admin.close()
