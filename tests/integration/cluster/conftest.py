"""An in-process apiserver against a real nats-server, and an admin connection; with a
scheduler and a kubelet on real podman (``cluster``, also named ``ctx``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from peapod.apiserver.main import run as run_apiserver
from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.controllers.main import run as run_controller_manager
from peapod.errors import NotFound
from peapod.scheduler.main import run as run_scheduler
from tests.integration.cluster.nodes import Node


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


@pytest.fixture
async def cluster(apiserver, podman_socket, tmp_path) -> AsyncIterator[dict]:
    """The apiserver fixture, a scheduler, and a kubelet (``node-a``) on real podman.

    Yields ``admin`` (a connection), ``creds`` and ``node`` (a ``Node``, to halt and start).
    At the end the kubelet stops and its podman pods are removed at once (``halt_and_clear``).
    """
    creds = apiserver["creds"]
    stop = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(creds["scheduler"], stop=stop))
    node = Node(creds, "node-a", tmp_path / "kubelet", podman_socket)
    node.start()
    admin = apiserver["admin"]
    for _ in range(100):
        try:
            if (await request(admin, s.api("nodes", "get"), {"name": "node-a"})):
                break
        except NotFound:
            await asyncio.sleep(0.1)
    yield {"admin": admin, "creds": creds, "node": node}
    await node.halt_and_clear()
    stop.set()
    await asyncio.wait_for(scheduler, 10)


@pytest.fixture
def ctx(cluster: dict) -> dict:
    """``cluster`` under the name most kubelet tests use."""
    return cluster
