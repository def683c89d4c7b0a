"""Resource usage for ``peapod top``, served by the kubelet over NATS.

A request on ``peapod.kubelet.<node>.stats`` (the admin and viewers may send
one, as for ``logs``) is answered with what Kubernetes' metrics pipeline
(the kubelet's summary API, then metrics-server) reports: the node's CPU in
nanocores and memory working set in bytes, and the same for each running
container of this kubelet's pods. CPU is a rate, so two samples are taken
``WINDOW`` seconds apart: the node's from ``/proc/stat`` (busy jiffies over
all jiffies, times the CPU count), the containers' from podman's stats API
(cumulative ``CPUNano`` over the wall-clock ``SystemNano``). Memory is the
node's ``MemTotal - MemAvailable`` and each container's ``MemUsage``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from peapod.bus import subjects as s
from peapod.bus.client import serve
from peapod.errors import Invalid
from peapod.kubelet.runtime import PodInfo

log = structlog.get_logger("kubelet.stats")

WINDOW = 1.0  # seconds between the two samples of a CPU rate


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


def read_cpu_times(proc: Path = Path("/proc")) -> CpuTimes:
    """The first ``cpu`` line of /proc/stat: busy (all but idle and iowait) and all jiffies."""
    fields = [int(v) for v in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # guest time is already in user and nice
    return CpuTimes(busy=total - idle, total=total)


def read_memory_working_set(proc: Path = Path("/proc")) -> int:
    """MemTotal - MemAvailable, in bytes."""
    info = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))


def node_nanocores(first: CpuTimes, second: CpuTimes, cpus: int) -> int:
    total = second.total - first.total
    return 0 if total <= 0 else int((second.busy - first.busy) / total * cpus * 1e9)


def container_nanocores(first: dict[str, Any], second: dict[str, Any]) -> int:
    wall = int(second.get("SystemNano", 0)) - int(first.get("SystemNano", 0))
    used = int(second.get("CPUNano", 0)) - int(first.get("CPUNano", 0))
    return 0 if wall <= 0 or used < 0 else int(used / wall * 1e9)


@dataclass
class Stats:
    nc: NATS
    node_name: str
    runtime: Any  # PodmanRuntime: list_pods(), container_stats(ids)
    proc: Path = Path("/proc")
    window: float = WINDOW
    sleep: Callable[[float], Any] = asyncio.sleep

    async def start(self) -> None:
        await serve(self.nc, s.kubelet(self.node_name, "stats"), self.stats)

    def _sample(self) -> tuple[CpuTimes, dict[str, dict[str, Any]], list[PodInfo]]:
        pods: list[PodInfo] = self.runtime.list_pods()
        running = [c.id for p in pods for c in p.containers if c.state == "running"]
        return read_cpu_times(self.proc), self.runtime.container_stats(running), pods

    async def stats(self, payload: dict[str, Any], msg: Msg) -> Any:
        if payload:  # nothing to choose: every pod of the node, all containers
            raise Invalid(f"stats takes no request fields, got {', '.join(sorted(payload))}"[:200])
        cpu_a, containers_a, _ = await asyncio.to_thread(self._sample)
        await self.sleep(self.window)
        cpu_b, containers_b, pods = await asyncio.to_thread(self._sample)
        memory = await asyncio.to_thread(read_memory_working_set, self.proc)
        result_pods = []
        for pod in pods:
            containers = [{"name": c.name,
                           "usage": {"cpu": container_nanocores(containers_a[c.id],
                                                                containers_b[c.id]),
                                     "memory": int(containers_b[c.id].get("MemUsage", 0))}}
                          for c in pod.containers if c.id in containers_a and c.id in containers_b]
            if containers:
                result_pods.append({"namespace": pod.namespace, "name": pod.name, "uid": pod.uid,
                                    "containers": containers})
        log.debug("stats_served", pods=len(result_pods))
        return {"window": f"{self.window:g}s",
                "node": {"name": self.node_name, "usage": {
                    "cpu": node_nanocores(cpu_a, cpu_b, os.cpu_count() or 1),
                    "memory": memory}},
                "pods": result_pods}
