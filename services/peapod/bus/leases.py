"""Who is alive: the kubelets' heartbeat leases, followed from the lease bucket.

Each kubelet renews ``peapod-leases/<node>`` every 10 s; a node whose lease is
older than ``LEASE_DURATION_SECONDS`` has stopped heartbeating. The scheduler
uses this to skip such nodes, and the apiserver to report them as Kubernetes'
node lifecycle controller does (``Ready=Unknown``, ``NodeStatusUnknown``).
Renewal times are the server's stamp on each entry. The bucket is followed
by an ``Informer`` (list, then watch, resuming after a reconnect); a lease's
value is not read, so no junk in it can stop the watch.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.js import JetStreamContext

from peapod.bus import subjects as s
from peapod.bus.informer import Informer, WatchEvent


def _unread(key: str, data: bytes) -> bytes:
    return data


class Leases:
    def __init__(self) -> None:
        self.renewed: dict[str, float] = {}  # node -> renew time (epoch seconds)

    def live(self, now: float) -> set[str]:
        """Nodes whose lease has not expired at ``now``."""
        return {node for node, at in self.renewed.items() if now - at < s.LEASE_DURATION_SECONDS}

    async def watch(self, js: JetStreamContext, *, on_alive: Callable[[], None] | None = None) -> None:
        """Follow the bucket until cancelled; ``on_alive`` runs when a node comes (back) to life."""
        self.renewed.clear()
        informer = Informer(js, bucket=s.LEASE_BUCKET, decode=_unread)
        informer.add_handler(lambda event: self._observe(event, on_alive))
        await informer.run()

    def _observe(self, event: WatchEvent[bytes], on_alive: Callable[[], None] | None) -> None:
        if event.type == "DELETED":
            self.renewed.pop(event.key, None)
            return
        came_alive = event.key not in self.live(event.written_at)
        self.renewed[event.key] = event.written_at
        if came_alive and on_alive is not None:
            on_alive()
