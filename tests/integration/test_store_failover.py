"""The apiserver's store rides out a NATS server dying in a 3-server cluster.

Real nats-servers (tests/natsd.py's TLSCluster, configured as the fleet's
``nats`` role configures three servers): the leader of the R3 KV stream is
killed and a write is made at once; it waits out the election and is stored
exactly once.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from peapod.apiserver.store import Store, ensure_jetstream
from peapod.bus import subjects as s
from peapod.bus.client import connect
from peapod.bus.identity import ensure
from tests.natsd import TLSCluster
from tests.pki import TestCA


async def test_a_write_waits_out_the_election_after_the_stream_leader_dies(tmp_path):
    ca = TestCA(tmp_path / "pki")
    cert = ca.issue("nats", dns=("localhost",), ips=("127.0.0.1",))
    admin, _ = ensure(tmp_path / "apiserver.json", user="apiserver", url="", ca_file=str(ca.cert_path))
    cluster = TLSCluster(tmp_path, users={"apiserver": admin.public_key}, cert=cert.cert, key=cert.key,
                         ca=ca.cert_path)
    cluster.start()
    try:
        nc = await connect(replace(admin, url=cluster.url), name="apiserver")
        js = nc.jetstream(timeout=5)
        for attempt in range(60):  # the meta leader is elected once the routes are up
            try:
                await ensure_jetstream(js, replicas=3)
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        store = Store(js)
        await store.create("widgets.default.before", {"metadata": {"name": "before"}}, what="before")
        info = await js.stream_info(s.KV_STREAM)
        leader = next(i for i, server in enumerate(cluster.servers)
                      if info.cluster and info.cluster.leader == f"nats{i}")
        cluster.servers[leader].kill()
        created = await store.create("widgets.default.after", {"metadata": {"name": "after"}}, what="after")
        got = await store.get("widgets.default.after", what="after")
        assert got.revision == created.revision
        # direct gets are answered by any replica; the earlier write is still there
        before = await store.get("widgets.default.before", what="before")
        assert before.value["metadata"]["name"] == "before"
        new_leader = (await js.stream_info(s.KV_STREAM)).cluster.leader
        assert new_leader != f"nats{leader}"
        await nc.close()
    finally:
        cluster.stop()
