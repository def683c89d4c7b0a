"""A kubelet run in-process by a test: the ``cluster`` fixture's node, and the fleets' nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from peapod.kubelet.main import run as run_kubelet


class Node:
    """A kubelet task that can be stopped and started again, as after a crash."""

    def __init__(self, creds: dict, name: str, state_dir: Path, socket: str) -> None:
        self.creds, self.name, self.state_dir, self.socket = creds, name, state_dir, socket
        self.extended_resources: dict[str, str] = {}  # what it advertises from its next start
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run_kubelet(
            self.creds[f"kubelet-{self.name}"], node_name=self.name, stop=self.stop,
            state_dir=str(self.state_dir), podman_socket=self.socket, host_ip="127.0.0.1",
            relist_period=0.5, heartbeat=2, extended_resources=self.extended_resources))

    async def halt(self) -> None:
        self.stop.set()
        if self.task:
            await asyncio.wait_for(self.task, 30)
