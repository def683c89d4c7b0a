"""An in-process apiserver against a real nats-server, and an admin connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.controllers.main import run as run_controller_manager
from peapod.scheduler.main import run as run_scheduler


@pytest.fixture
async def apiserver(cluster_creds: dict) -> AsyncIterator[dict]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_apiserver(cluster_creds["apiserver"], stop=stop))
    admin = await connect(cluster_creds["admin"], name="test-admin")
    for _ in range(100):  # wait until the apiserver answers
        try:
            await request(admin, s.api("nodes", "list"), {}, timeout=0.5)
            break
        except Exception:
            await asyncio.sleep(0.05)
    try:
        yield {"admin": admin, "creds": cluster_creds, "stop": stop, "task": task}
    finally:
        await admin.close()
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def controllers(apiserver: dict) -> AsyncIterator[dict]:
    """The apiserver fixture and an in-process controller manager with its own NATS user."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_controller_manager(apiserver["creds"]["controller-manager"],
                                                      stop=stop))
    yield apiserver
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def scheduler(apiserver: dict) -> AsyncIterator[dict]:
    """The apiserver fixture and an in-process scheduler with its own NATS user."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(apiserver["creds"]["scheduler"], stop=stop))
    yield apiserver
    stop.set()
    await asyncio.wait_for(task, 10)
