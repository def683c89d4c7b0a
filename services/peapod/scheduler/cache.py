"""The scheduler's view of the cluster: a list+watch of the KV bucket.

One KV watch (last value per key, then every change) fills two dicts, pods
and nodes. Decisions are made from this cache only; a stale cache can at
worst produce a bind that loses its compare-and-set, which the scheduler
treats as "look again". ``changed`` is set on every update so the loop runs
when something happened instead of polling the store.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from nats.js import JetStreamContext

from peapod.api import Node, Pod
from peapod.bus import subjects as s
from peapod.bus.leases import Leases

log = structlog.get_logger("scheduler.cache")


class ClusterCache:
    def __init__(self) -> None:
        self.pods: dict[str, Pod] = {}
        self.nodes: dict[str, Node] = {}
        self.leases = Leases()
        self.changed = asyncio.Event()
        self.synced = asyncio.Event()

    def apply(self, key: str, value: bytes | None, *, deleted: bool) -> None:
        kind = key.split(".", 1)[0]
        target: dict[str, Pod] | dict[str, Node]
        target = self.pods if kind == "pods" else self.nodes  # type: ignore[assignment]
        if kind not in ("pods", "nodes"):
            return
        if deleted or not value:
            target.pop(key, None)
        elif kind == "pods":
            self.pods[key] = Pod.model_validate(json.loads(value))
        else:
            self.nodes[key] = Node.model_validate(json.loads(value))
        self.changed.set()

    def live_nodes(self, now: float) -> set[str]:
        """Nodes whose heartbeat lease has not expired."""
        return self.leases.live(now)

    async def watch_leases(self, js: JetStreamContext) -> None:
        await self.leases.watch(js, on_alive=self.changed.set)

    async def watch(self, js: JetStreamContext) -> None:
        """Fill the cache and follow changes until cancelled."""
        self.pods.clear()
        self.nodes.clear()
        self.synced.clear()
        kv = await js.key_value(s.KV_BUCKET)
        watcher = await kv.watch(">")
        try:
            while True:
                entry = await watcher.updates(timeout=None)  # type: ignore[arg-type]
                if entry is None:  # the initial list is complete
                    self.synced.set()
                    log.info("cache_synced", pods=len(self.pods), nodes=len(self.nodes))
                    self.changed.set()
                    continue
                self.apply(entry.key, entry.value,
                           deleted=entry.operation in ("DEL", "PURGE"))
        finally:
            await watcher.stop()
