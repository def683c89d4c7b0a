"""The control plane against NATS running in a container (testcontainers + podman)."""

from __future__ import annotations

import asyncio

import pytest

from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.errors import Forbidden, Unavailable


async def test_apiserver_serves_and_permissions_hold_against_containerised_nats(nats_container):
    stop = asyncio.Event()
    task = asyncio.create_task(run_apiserver(nats_container["apiserver"], stop=stop))
    admin = await connect(nats_container["admin"], name="admin")
    try:
        for _ in range(100):
            try:
                await request(admin, s.api("pods", "list"), {}, timeout=0.5)
                break
            except Unavailable:
                await asyncio.sleep(0.1)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"},
               "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
        created = await request(admin, s.api("pods", "create"), {"object": pod})
        assert created["metadata"]["resourceVersion"]
        # the scheduler user may bind, but may not create pods
        scheduler = await connect(nats_container["scheduler"], name="scheduler")
        with pytest.raises(Forbidden, match='User "scheduler" cannot create resource "pods"'):
            await request(scheduler, s.api("pods", "create"), {"object": pod}, timeout=1)
        await scheduler.close()
    finally:
        await admin.close()
        stop.set()
        await asyncio.wait_for(task, 10)
