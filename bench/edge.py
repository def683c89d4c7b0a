"""The edge budget (issue 14): what a node costs at idle, and how fast it recovers.

Measured on the cluster `peapod up` starts (bench/run.py), from outside:

- **disk writes at idle** with N Running pods: every file change under the
  kubelet's state directory (the node's disk) and under nats-server's
  JetStream store (the control host's), counted at the filesystem with
  inotify (one count per write(2), create, rename or unlink), and each
  process's ``write_bytes`` from /proc/PID/io (what it sent to the storage
  layer, page cache included), over a window of several minutes;
- **the kubelet's idle CPU and memory**: CPU share over the same window, and
  VmRSS with no pods and with N Running pods;
- **recovery after a control-plane outage**: nats-server is stopped
  (SIGSTOP: the kubelet's connection goes silent, as when the control host's
  power or network is cut) for M minutes while a crashing pod restarts; after
  SIGCONT, the time until the node reads Ready again and until that pod's
  restartCount in the API is the one podman shows.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import re
import signal
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from podman import PodmanClient
from procfs import cpu_seconds, status_mib, write_bytes

from peapod.cli.client import Client
from peapod.cli.context import load_context

IN_MODIFY, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x80, 0x100, 0x200
IN_ISDIR, IN_NONBLOCK = 0x40000000, 0o4000
WATCHED = IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE
EVENT = struct.Struct("iIII")
RESTART_LABEL = "io.peapod.container.restartCount"


class FileChanges:
    """Counts file changes under some directories with inotify (no dependency: libc)."""

    def __init__(self, roots: list[Path]) -> None:
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.dirs: dict[int, Path] = {}
        self.counts: dict[Path, int] = dict.fromkeys(roots, 0)
        self.root_of: dict[int, Path] = {}
        for root in roots:
            for path in [root, *(p for p in root.rglob("*") if p.is_dir())]:
                self._watch(path, root)
        asyncio.get_running_loop().add_reader(self.fd, self._read)

    def _watch(self, path: Path, root: Path) -> None:
        wd = self.libc.inotify_add_watch(self.fd, str(path).encode(), WATCHED)
        if wd >= 0:
            self.dirs[wd], self.root_of[wd] = path, root

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            wd, mask, _, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size:offset + EVENT.size + length].rstrip(b"\0")
            offset += EVENT.size + length
            root = self.root_of.get(wd)
            if root is None:
                continue
            self.counts[root] += 1
            if mask & IN_CREATE and mask & IN_ISDIR:
                self._watch(self.dirs[wd] / name.decode(), root)

    def take(self) -> dict[Path, int]:
        self._read()
        counts, self.counts = self.counts, dict.fromkeys(self.counts, 0)
        return counts

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


def store_dir(home: Path) -> Path:
    text = (home / "nats.conf").read_text()
    match = re.search(r'store_dir:\s*"?([^"\n]+)"?', text)
    if not match:
        raise RuntimeError("no JetStream store_dir in nats.conf")
    return Path(match[1])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Seconds until ``check()`` holds (errors while the bus comes back count as not yet)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if await check():
                return time.perf_counter() - started
        except Exception:  # the bus is coming back: try again
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"not within {timeout:g} s")


def sleeper(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "edge"}},
            "spec": {"terminationGracePeriodSeconds": 1, **spec, "containers": [
                {"name": "main", "image": image, "command": ["sleep", "3600"]}]}}


def podman_restart_count(socket: str, uid: str) -> int:
    with PodmanClient(base_url=f"unix://{socket}") as podman:
        found = podman.containers.list(all=True, filters={"label": f"io.peapod.pod.uid={uid}"})
        counts = [int(c.labels.get(RESTART_LABEL, 0)) for c in found if RESTART_LABEL in c.labels]
    return max(counts, default=0)


async def edge_budget(home: Path, node: str, *, image: str, socket: str, pods: int,
                      idle_minutes: float, outage_minutes: float) -> list[str]:
    pids = json.loads((home / "pids.json").read_text())
    kubelet, nats = pids["kubelet"], pids["nats"]
    context = load_context("local", path=home / "config")
    client = await Client.open(context)
    rows: list[str] = []
    try:
        rss_idle = status_mib(kubelet, 'VmRSS')
        for i in range(pods):
            await client.create(sleeper(f"edge-{i}", image))

        async def running(count: int) -> bool:
            listed = await client.list_pods(selector="app=edge")
            return sum(bool(p.status and p.status.phase == "Running") for p in listed) >= count

        await eventually(lambda: running(pods), timeout=600)
        await asyncio.sleep(20)  # the starts' work settles
        rows += await _idle_window(home, kubelet, nats, pods, idle_minutes)
        rows.append(f"| kubelet memory (VmRSS) | 2 | {rss_idle:.1f} MiB with no pods, "
                    f"{status_mib(kubelet, 'VmRSS'):.1f} MiB with {pods} Running pods |")
        # a pod that keeps crashing, so that something changes while the control plane is away
        crasher = sleeper("edge-crasher", image)
        crasher["spec"]["containers"][0]["command"] = ["sh", "-c", "sleep 5; exit 1"]
        uid = (await client.create(crasher))["metadata"]["uid"]
        await eventually(lambda: running(pods + 1), timeout=600)
    finally:
        await client.close()
    rows.append(await _outage(context, node, nats, socket=socket, uid=uid,
                              minutes=outage_minutes))
    client = await Client.open(context)
    try:
        for name in [f"edge-{i}" for i in range(pods)] + ["edge-crasher"]:
            await client.delete_pod(name, grace=0)

        async def all_gone() -> bool:
            return not await client.list_pods(selector="app=edge")

        await eventually(all_gone, timeout=600)
    finally:
        await client.close()
    return rows


async def _idle_window(home: Path, kubelet: int, nats: int, pods: int,
                       minutes: float) -> list[str]:
    node_dir, control_dir = home / "kubelet", store_dir(home)
    changes = FileChanges([node_dir, control_dir])
    try:
        bytes0 = {pid: write_bytes(pid) for pid in (kubelet, nats)}
        cpu0, t0 = cpu_seconds(kubelet), time.perf_counter()
        await asyncio.sleep(minutes * 60)
        counts = changes.take()
        elapsed = time.perf_counter() - t0
        cpu = (cpu_seconds(kubelet) - cpu0) / elapsed
        per_minute = {pid: (write_bytes(pid) - bytes0[pid]) / 1024 / (elapsed / 60)
                      for pid in (kubelet, nats)}
    finally:
        changes.close()
    window = f"{elapsed / 60:.1f} min"
    running = f"{pods} Running pods"
    return [
        f"| node disk writes at idle ({running}): file changes under the kubelet's state dir "
        f"| {window} | {counts[node_dir] / (elapsed / 60):.2f} per minute; kubelet write_bytes "
        f"{per_minute[kubelet]:.1f} KiB/min |",
        f"| control host disk writes for this node at idle: file changes in the JetStream store "
        f"| {window} | {counts[control_dir] / (elapsed / 60):.2f} per minute; nats-server "
        f"write_bytes {per_minute[nats]:.1f} KiB/min |",
        f"| kubelet idle CPU ({running}) | {window} | {cpu * 100:.2f} % of one core |",
    ]


async def _outage(context: Any, node: str, nats: int, *, socket: str, uid: str,
                  minutes: float) -> str:
    os.kill(nats, signal.SIGSTOP)
    try:
        await asyncio.sleep(minutes * 60)
    finally:
        os.kill(nats, signal.SIGCONT)
    resumed = time.perf_counter()
    in_podman = await asyncio.to_thread(podman_restart_count, socket, uid)

    async def with_client(check: Callable[[Client], Awaitable[bool]]) -> bool:
        client = await Client.open(context)
        try:
            return await check(client)
        finally:
            await client.close()

    async def node_ready(client: Client) -> bool:
        return (await client.get_node(node)).ready

    async def restarts_current(client: Client) -> bool:
        pod = await client.get_pod("edge-crasher")
        statuses = (pod.status.container_statuses or []) if pod.status else []
        return bool(statuses) and statuses[0].restart_count >= in_podman

    ready = await eventually(lambda: with_client(node_ready), timeout=300)
    await eventually(lambda: with_client(restarts_current), timeout=300)
    current = time.perf_counter() - resumed
    return (f"| recovery after a {minutes:g}-minute control-plane outage (nats-server stopped) "
            f"| 1 | node Ready {ready:.1f} s after it returned; the crashing pod's restartCount "
            f"({in_podman}, restarted while cut off) current after {current:.1f} s |")
