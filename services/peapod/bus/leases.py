"""Who is alive: the kubelets' heartbeat leases, followed from the lease bucket.

Each kubelet renews ``peapod-leases/<node>`` every 10 s; a node whose lease is
older than ``LEASE_DURATION_SECONDS`` has stopped heartbeating. The scheduler
uses this to skip such nodes, and the apiserver to report them as Kubernetes'
node lifecycle controller does (``Ready=Unknown``, ``NodeStatusUnknown``).
Renewal times are the server's stamp on each entry.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.js import JetStreamContext

from peapod.bus import subjects as s


class Leases:
    def __init__(self) -> None:
        self.renewed: dict[str, float] = {}  # node -> renew time (epoch seconds)

    def live(self, now: float) -> set[str]:
        """Nodes whose lease has not expired at ``now``."""
        return {node for node, at in self.renewed.items() if now - at < s.LEASE_DURATION_SECONDS}

    async def watch(self, js: JetStreamContext, *, on_alive: Callable[[], None] | None = None) -> None:
        """Follow the bucket until cancelled; ``on_alive`` runs when a node comes (back) to life."""
        self.renewed.clear()
        kv = await js.key_value(s.LEASE_BUCKET)
        watcher = await kv.watch(">")
        try:
            while True:
                entry = await watcher.updates(timeout=None)  # type: ignore[arg-type]
                if entry is None:
                    continue
                if entry.operation in ("DEL", "PURGE") or entry.created is None:
                    self.renewed.pop(entry.key, None)
                    continue
                at = entry.created.timestamp()
                came_alive = entry.key not in self.live(at)
                self.renewed[entry.key] = at
                if came_alive and on_alive is not None:
                    on_alive()
        finally:
            await watcher.stop()
