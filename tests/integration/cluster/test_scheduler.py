"""The scheduler against a real apiserver and nats-server: binds, and explains failures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.bus.replay import read_all


def node(name: str, *, cpu: str = "2", memory: str = "2Gi", labels: dict | None = None,
         heartbeat: str | None = None) -> dict:
    ready = {"type": "Ready", "status": "True", **({"lastHeartbeatTime": heartbeat} if heartbeat else {})}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [ready]}}


def pod(name: str, *, cpu: str = "100m", selector: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox:1",
                                  "resources": {"requests": {"cpu": cpu}}}]}
    if selector:
        spec["nodeSelector"] = selector
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def wait_for_node_name(admin, name: str, timeout: float = 10) -> str | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        got = await request(admin, s.api("pods", "get"), {"namespace": "default", "name": name})
        if got["spec"].get("nodeName"):
            return got["spec"]["nodeName"]
        await asyncio.sleep(0.1)
    return None


async def events_for(admin, name: str) -> list[dict]:
    import json
    msgs = await read_all(jetstream(admin), stream=s.EVENTS_STREAM,
                          subject=s.event("default", "Pod", name))
    return [json.loads(m.data) for m in msgs]


async def register(creds, name: str, *, live: bool = True, **kwargs) -> None:
    nc = await connect(creds[f"kubelet-{name}"], name=name)
    await request(nc, s.node_api(name, "register"), {"object": node(name, **kwargs)})
    if live:
        await jetstream(nc).publish(s.lease(name), b'{"holderIdentity": "%s"}' % name.encode())
    await nc.close()


async def test_pod_is_bound_to_the_node_matching_its_selector(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", labels={"disk": "hdd"})
    await register(creds, "node-b", labels={"disk": "ssd"})
    await request(admin, s.api("pods", "create"), {"object": pod("fast", selector={"disk": "ssd"})})
    assert await wait_for_node_name(admin, "fast") == "node-b"
    for _ in range(50):  # the event is recorded after the binding, not with it
        events = await events_for(admin, "fast")
        if any(e["reason"] == "Scheduled" for e in events):
            break
        await asyncio.sleep(0.1)
    assert any(e["reason"] == "Scheduled" and "default/fast to node-b" in e["message"]
               for e in events), events


async def test_pod_that_fits_nowhere_stays_pending_with_failed_scheduling(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", cpu="1")
    await register(creds, "node-b", cpu="1", labels={"zone": "x"})
    await request(admin, s.api("pods", "create"), {"object": pod("huge", cpu="1500m")})
    await asyncio.sleep(1)
    for _ in range(50):
        events = await events_for(admin, "huge")
        if events:
            break
        await asyncio.sleep(0.1)
    assert await wait_for_node_name(admin, "huge", timeout=0.5) is None
    failed = [e for e in events if e["reason"] == "FailedScheduling"]
    assert failed and failed[0]["type"] == "Warning"
    assert failed[0]["message"] == ("0/2 nodes are available: 2 Insufficient cpu. preemption: "
                                    "0/2 nodes are available: 2 No preemption victims found for "
                                    "incoming pod.")


async def test_pods_spread_by_free_resources_and_respect_capacity(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", cpu="1")
    await register(creds, "node-b", cpu="1")
    for i in range(4):
        await request(admin, s.api("pods", "create"), {"object": pod(f"p{i}", cpu="400m")})
    placed = [await wait_for_node_name(admin, f"p{i}") for i in range(4)]
    assert sorted(placed) == ["node-a", "node-a", "node-b", "node-b"]
    await request(admin, s.api("pods", "create"), {"object": pod("p4", cpu="400m")})
    assert await wait_for_node_name(admin, "p4", timeout=1.5) is None


async def test_node_without_a_heartbeat_lease_gets_no_pods(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    await register(creds, "node-a", live=False)
    await request(admin, s.api("pods", "create"), {"object": pod("p")})
    assert await wait_for_node_name(admin, "p", timeout=1.5) is None
    await register(creds, "node-b")
    assert await wait_for_node_name(admin, "p") == "node-b"


async def test_a_node_whose_kubelet_stopped_heartbeating_reads_not_ready(scheduler):
    admin, creds = scheduler["admin"], scheduler["creds"]
    stale = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await register(creds, "node-a", heartbeat=stale)  # lease renewed just now
    await register(creds, "node-b", heartbeat=stale, live=False)  # silent for five minutes
    got = {n["metadata"]["name"]: n for n in await request(admin, s.api("nodes", "list"), {})}
    ready = {name: next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
             for name, n in got.items()}
    assert ready["node-a"]["status"] == "True"
    assert (ready["node-b"]["status"], ready["node-b"]["reason"]) == ("Unknown", "NodeStatusUnknown")
    single = await request(admin, s.api("nodes", "get"), {"name": "node-b"})
    assert next(c for c in single["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"
