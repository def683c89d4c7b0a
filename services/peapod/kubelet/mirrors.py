"""Mirror pods: the API's copies of this node's static pods (Kubernetes' mirror client).

The kubelet reads the mirror pods of its node on its partition, as any pod
bound to it, but never runs them: the manifest file is the truth. Once the
partition is read and the Node registered, and after every change (a manifest
added, edited or removed, a mirror pod changed or deleted in the API), and
every ``period`` seconds, each static pod gets exactly one mirror pod of its
current hash:

* a mirror pod of no static pod (its file removed), of an older hash (the
  file edited) or being deleted (``peapod delete pod``) is deleted at once
  (``…node.<node>.mirror.delete``, with its uid as precondition);
* a static pod without one gets one (``…node.<node>.mirror.create``): bound to
  the node, ``kubernetes.io/config.mirror`` set to its hash, owned by the Node.

So deleting a mirror pod through the API does not stop the static pod: the
kubelet makes the mirror pod again. A refusal (a namespace that does not
exist, Pod Security) is logged once per pod and message and tried again at
the next period; the static pod runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from nats.aio.client import Client as NATS

from peapod.api import Pod
from peapod.api.static import mirror_hash, mirror_of
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound, PeapodError, Unavailable

log = structlog.get_logger("kubelet.mirrors")

MIRROR_CHECK_SECONDS = 10.0


def _revision(pod: Pod) -> int:
    value = pod.metadata.resource_version or ""
    return int(value) if value.isdigit() else 0


class MirrorPods:
    def __init__(self, *, node_name: str) -> None:
        self.node_name = node_name
        self.node_uid: str | None = None  # from the Node's registration
        self.seen: dict[str, Pod] = {}  # pod key -> the mirror pod the API holds
        self.wake = asyncio.Event()
        self._refused: dict[str, str] = {}  # pod key -> the refusal last logged

    def observe(self, pod: Pod, *, deleted: bool) -> None:
        """A mirror pod read on the partition (an older revision than ours is ignored)."""
        key, held = pod.key, self.seen.get(pod.key)
        if deleted:
            if held is None or held.metadata.uid == pod.metadata.uid:
                self.seen.pop(key, None)
        elif held is None or _revision(pod) >= _revision(held):
            self.seen[key] = pod
        self.wake.set()

    def target(self, static: Pod) -> str | None:
        """The uid of the mirror pod ``static``'s status goes to, if there is a current one."""
        mirror = self.seen.get(static.key)
        if mirror is None or mirror.metadata.deletion_timestamp or \
                mirror_hash(mirror) != static.metadata.uid:
            return None
        return mirror.metadata.uid

    async def run(self, nc: NATS, statics: Callable[[], dict[str, Pod]], *,
                  synced: asyncio.Event, period: float = MIRROR_CHECK_SECONDS) -> None:
        await synced.wait()  # every mirror pod of the node is known
        while True:
            self.wake.clear()
            if nc.is_connected and self.node_uid:
                await self.sync(nc, statics())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=period)

    async def sync(self, nc: NATS, statics: dict[str, Pod]) -> None:
        for key in sorted(set(self.seen) | set(statics)):
            static, mirror = statics.get(key), self.seen.get(key)
            if mirror is not None and (static is None or mirror.metadata.deletion_timestamp
                                       or mirror_hash(mirror) != static.metadata.uid):
                if not await self._delete(nc, mirror):
                    continue
                mirror = None
            if static is not None and mirror is None:
                await self._create(nc, static)

    async def _delete(self, nc: NATS, mirror: Pod) -> bool:
        meta = mirror.metadata
        mlog = log.bind(node=self.node_name, namespace=meta.namespace, name=meta.name,
                        uid=meta.uid)
        try:
            await request(nc, s.node_api(self.node_name, "mirror.delete"), {
                "namespace": meta.namespace, "name": meta.name, "uid": meta.uid})
        except NotFound:
            pass  # gone already
        except PeapodError as exc:
            self._refusal(mirror.key, "mirror_pod_not_deleted", exc, mlog)
            return False
        held = self.seen.get(mirror.key)
        if held is not None and held.metadata.uid == meta.uid:
            del self.seen[mirror.key]
        mlog.info("mirror_pod_deleted", hash=mirror_hash(mirror))
        return True

    async def _create(self, nc: NATS, static: Pod) -> None:
        meta = static.metadata
        mlog = log.bind(node=self.node_name, namespace=meta.namespace, name=meta.name,
                        uid=meta.uid)
        try:
            created = await request(nc, s.node_api(self.node_name, "mirror.create"), {
                "object": mirror_of(static, node_uid=self.node_uid or "")})
        except PeapodError as exc:  # AlreadyExists: the partition will show what holds it
            self._refusal(static.key, "mirror_pod_not_created", exc, mlog)
            return
        mirror = Pod.model_validate(created)
        self.seen[static.key] = mirror
        self._refused.pop(static.key, None)
        mlog.info("mirror_pod_created", mirror_uid=mirror.metadata.uid)

    def _refusal(self, key: str, event: str, exc: PeapodError, mlog: Any) -> None:
        if isinstance(exc, Unavailable):
            mlog.debug(event, error=exc.message)
            return
        if self._refused.get(key) != exc.message:
            self._refused[key] = exc.message
            mlog.warning(event, error=exc.message)
