"""A kubelet run in-process by a test: the ``cluster`` fixture's node, and the fleets' nodes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from peapod.kubelet.main import run as run_kubelet
from peapod.kubelet.runtime import LABEL_KUBELET, LABEL_UID, PodmanRuntime


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

    async def halt_and_clear(self) -> None:
        """Stop the kubelet, then remove every podman pod it made, killed at once.

        A test's cleanup, not a deletion test: the kubelet's own deletion (the grace
        period, Kubernetes' 2 s minimum for a container that ignores SIGTERM, the
        confirmation to the apiserver) is what test_kubelet.py and the termination tests
        prove; waiting it out after every test cost 3 to 7 s a test.
        """
        await self.halt()
        await asyncio.to_thread(remove_podman_pods, self.socket, self.state_dir)


def remove_podman_pods(socket: str, state_dir: Path) -> None:
    """Remove the podman pods (sandbox and containers) of the kubelet of ``state_dir``."""
    runtime = PodmanRuntime(socket_path=socket, state_dir=str(state_dir))
    mine = json.dumps({"label": [f"{LABEL_KUBELET}={runtime.kubelet_id}"]})
    try:
        listed = runtime.api.get("/pods/json", params={"filters": mine})
        listed.raise_for_status()
        for pod in listed.json() or []:
            runtime.remove_pod(pod["Labels"][LABEL_UID])
    finally:
        runtime.client.close()
