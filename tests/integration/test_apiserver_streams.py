"""The lease bucket lives in memory: after a nats-server restart the apiserver recreates it.

Real nats-server, restarted for real (a single server, as a one-server fleet
or ``peapod up`` runs it); the apiserver's connection reconnects by itself.
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.js.errors import NotFoundError

from peapod.apiserver.main import keep_streams
from peapod.apiserver.store import ensure_jetstream
from peapod.bus import subjects as s
from peapod.bus.auth import write_cluster_config
from peapod.bus.client import connect, jetstream
from tests.natsd import NATSD, free_port


async def test_the_lease_bucket_comes_back_after_a_server_restart(tmp_path):
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path / "state"), nodes=["node-a"], port=port, http_port=http_port)
    natsd = NATSD(tmp_path / "state" / "nats.conf", http_port)
    natsd.start()
    nc = await connect(creds["apiserver"], name="apiserver")
    js = jetstream(nc)
    keeper = None
    try:
        await ensure_jetstream(js)
        natsd.stop()
        natsd.start()  # memory storage is gone; file storage (the KV) is back
        for _ in range(60):  # reconnected, and JetStream answers again
            try:
                await js.stream_info(s.KV_STREAM)
                break
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ConnectionError):
                await asyncio.sleep(0.5)
        try:
            await js.stream_info(s.LEASE_STREAM)
            raise AssertionError("the memory-backed lease stream survived a restart")
        except NotFoundError:
            pass
        assert (await js.stream_info(s.KV_STREAM)).config.name == s.KV_STREAM
        keeper = asyncio.create_task(keep_streams(js, replicas=1, period=0.2))
        for _ in range(100):
            try:
                info = await js.stream_info(s.LEASE_STREAM)
                break
            except NotFoundError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the lease stream was not recreated")
        assert str(getattr(info.config.storage, "value", info.config.storage)) == "memory"
    finally:
        if keeper:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await nc.close()
        natsd.stop()
