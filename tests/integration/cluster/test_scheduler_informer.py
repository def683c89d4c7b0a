"""The scheduler on the informer: junk in the bucket is skipped, changes still drive binds."""

from __future__ import annotations

from structlog.testing import capture_logs

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from tests.integration.cluster.test_scheduler import pod, register, wait_for_node_name


async def test_junk_in_the_bucket_is_skipped_and_scheduling_goes_on(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    kv = await jetstream(admin).key_value(s.KV_BUCKET)
    with capture_logs() as logs:
        await kv.put(s.kv_key("pods", "default", "junk"), b"\x00 not json")
        await kv.put(s.kv_key("nodes", None, "junk"), b'{"kind": "Node", "metadata": 7}')
        await register(creds, "node-a")
        await request(admin, s.api("pods", "create"), {"object": pod("after-junk")})
        assert await wait_for_node_name(admin, "after-junk") == "node-a"
    skipped = {e["key"] for e in logs if e["event"] == "watch_value_skipped"}
    assert skipped == {"pods.default.junk", "nodes.junk"}
    # (the apiserver's fan-out does crash on such junk today; that is not the scheduler's task)
    assert not [e for e in logs if e["event"] == "reconcile_crashed"
                or (e["event"] == "task_crashed" and e["task"] in ("watch", "schedule"))]


async def test_a_pod_deleted_while_pending_is_forgotten(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", cpu="1")
    await request(admin, s.api("pods", "create"), {"object": pod("big", cpu="1500m")})
    await request(admin, s.api("pods", "delete"), {"namespace": "default", "name": "big"})
    await request(admin, s.api("pods", "create"), {"object": pod("small", cpu="500m")})
    assert await wait_for_node_name(admin, "small") == "node-a"
