"""The kubelet's heartbeat through a missing lease bucket.

The bucket lives in memory: after a single nats-server restarts it is gone
until the apiserver's ``keep_streams`` recreates it. The renewal used to
raise at once, and its task was restarted after up to 30 s each time. Now it
logs once per outage, keeps trying (0.5 s doubling up to the heartbeat), and
the first renewal once the bucket is back ends the outage. Real nats-server;
the bucket is deleted with the admin's credentials, as a restart loses it;
the kubelet's renewal runs with the kubelet's own credentials. No podman:
the heartbeat does not touch it (runtime None).
"""

from __future__ import annotations

import asyncio
import json

from structlog.testing import capture_logs

from peapod.apiserver.store import ensure_jetstream
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream
from peapod.bus.events import EventRecorder
from peapod.kubelet.agent import Kubelet


async def lease_of(js, node: str) -> dict | None:
    try:
        msg = await js.get_msg(s.LEASE_STREAM, subject=s.lease(node), direct=True)
    except Exception:
        return None
    return json.loads(msg.data)


async def test_lease_renewal_survives_a_missing_bucket_and_logs_once(cluster_creds):
    admin = await connect(cluster_creds["admin"], name="admin")
    node_nc = await connect(cluster_creds["kubelet-node-a"], name="kubelet")
    js = jetstream(admin)
    kubelet = Kubelet(node_name="node-a", nc=node_nc, js=jetstream(node_nc),
                      runtime=None,  # type: ignore[arg-type]
                      events=EventRecorder.for_node(node_nc, "node-a"), host_ip="127.0.0.1",
                      heartbeat=1.0)
    task = None
    try:
        await ensure_jetstream(js)
        await js.delete_stream(s.LEASE_STREAM)  # what a restart of the server does to it
        with capture_logs() as logs:
            task = asyncio.create_task(kubelet.renew_lease())
            await asyncio.sleep(3)  # retried at 0.5, 1, 1 s: still one line
            assert not task.done(), task.exception()
            failed = [e for e in logs if e["event"] == "lease_not_renewed"]
            assert len(failed) == 1, logs
            assert failed[0]["log_level"] == "warning" and failed[0]["node"] == "node-a"
            await ensure_jetstream(js)  # keep_streams recreates it
            for _ in range(50):
                if lease := await lease_of(js, "node-a"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the lease was not renewed after the bucket came back")
            assert lease["holderIdentity"] == "node-a"
            assert [e["event"] for e in logs if e["event"].startswith("lease_")] == [
                "lease_not_renewed", "lease_renewed"]
            # and the next outage is logged again, once
            await js.delete_stream(s.LEASE_STREAM)
            await asyncio.sleep(2.5)
            assert len([e for e in logs if e["event"] == "lease_not_renewed"]) == 2
            assert not task.done()
    finally:
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        kubelet.close()
        await node_nc.close()
        await admin.close()
