"""Who is alive: the kubelets' heartbeat leases, followed from the lease bucket.

Each kubelet renews ``peapod-leases/<node>`` every 10 s; a node whose lease is
older than ``LEASE_DURATION_SECONDS`` has stopped heartbeating. The scheduler
uses this to skip such nodes, and the apiserver to report them as Kubernetes'
node lifecycle controller does (``Ready=Unknown``, ``NodeStatusUnknown``).
Renewal times are the server's stamp on each entry. The bucket is followed
by an ``Informer`` (list, then watch, resuming after a reconnect); a lease's
value is not read, so no junk in it can stop the watch.

``LeaseKeeper`` is the kubelet's side. The bucket lives in memory, so after a
single nats-server restarts it is gone until the apiserver recreates it (within
10 s), and while the link is down nothing can be published at all. Neither may
stop the heartbeat: a renewal that fails is logged once per outage
(``lease_not_renewed``), tried again after 0.5 s doubling up to the heartbeat
period, and the first renewal after the outage says how long it lasted
(``lease_renewed``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import nats.errors
import structlog
from nats.js import JetStreamContext

from peapod.api import now_rfc3339
from peapod.bus import subjects as s
from peapod.bus.informer import Informer, WatchEvent

log = structlog.get_logger("leases")


def _unread(key: str, data: bytes) -> bytes:
    return data


class Leases:
    def __init__(self) -> None:
        self.renewed: dict[str, float] = {}  # node -> renew time (epoch seconds)

    def live(self, now: float) -> set[str]:
        """Nodes whose lease has not expired at ``now``."""
        return {node for node, at in self.renewed.items() if now - at < s.LEASE_DURATION_SECONDS}

    async def watch(self, js: JetStreamContext, *, on_alive: Callable[[], None] | None = None,
                    on_gone: Callable[[], None] | None = None) -> None:
        """Follow the bucket until cancelled; ``on_alive`` runs when a node comes (back) to
        life, ``on_gone`` when a lease is deleted (its node is silent from now on)."""
        self.renewed.clear()
        informer = Informer(js, bucket=s.LEASE_BUCKET, decode=_unread)
        informer.add_handler(lambda event: self._observe(event, on_alive, on_gone))
        await informer.run()

    def _observe(self, event: WatchEvent[bytes], on_alive: Callable[[], None] | None,
                 on_gone: Callable[[], None] | None = None) -> None:
        if "." in event.key:  # a leader-election lease (bus/election.py), not a node's
            return
        if event.type == "DELETED":
            self.renewed.pop(event.key, None)
            if on_gone is not None:
                on_gone()
            return
        came_alive = event.key not in self.live(event.written_at)
        self.renewed[event.key] = event.written_at
        if came_alive and on_alive is not None:
            on_alive()


class LeaseKeeper:
    """Renews ``node``'s lease every ``period`` seconds, through any outage."""

    def __init__(self, js: JetStreamContext, node: str, *, period: float = 10.0,
                 first_retry: float = 0.5) -> None:
        self.js = js
        self.node = node
        self.period = period
        self._first_retry = first_retry
        self._outage_since: float | None = None  # loop time of the first failed renewal
        self._log = log.bind(node=node)

    async def renew(self) -> bool:
        """One renewal; False (logged once per outage) if it could not be published."""
        lease = {"holderIdentity": self.node, "renewTime": now_rfc3339(),
                 "leaseDurationSeconds": s.LEASE_DURATION_SECONDS}
        now = asyncio.get_running_loop().time()
        try:
            await self.js.publish(s.lease(self.node), json.dumps(lease).encode())
        except (nats.errors.Error, TimeoutError) as exc:  # no stream, no link, no answer
            if self._outage_since is None:
                self._outage_since = now
                self._log.warning("lease_not_renewed", error=str(exc) or type(exc).__name__,
                                  retrying=True)
            return False
        if self._outage_since is not None:
            self._log.info("lease_renewed", after_seconds=round(now - self._outage_since, 1))
            self._outage_since = None
        return True

    async def run(self) -> None:
        """Renew until cancelled: every ``period``, sooner while renewals fail."""
        retry = self._first_retry
        while True:
            if await self.renew():
                retry, delay = self._first_retry, self.period
            else:
                delay, retry = retry, min(retry * 2, self.period)
            await asyncio.sleep(delay)
