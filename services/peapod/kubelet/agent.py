"""The kubelet's loops: its partition, one worker per pod, podman relist, node status.

* **Partition**: one JetStream consumer over ``peapod.node.<node>.>``,
  recreated at start with "last value per subject", is the kubelet's
  list+watch: it first receives every pod bound here, then every change. The
  kubelet cannot see other nodes' pods (the NATS permissions forbid it).
* **One worker per pod** (kopf's design): updates for one pod are handled in
  order by its own task, while different pods proceed in parallel; a slow
  graceful stop of one pod never delays another.
* **Relist**: every second one ``list_pods`` call snapshots podman, wakes every
  worker (the loop is level-triggered: a missed event delays, never breaks)
  and, once the partition is synced, removes podman pods no desired pod owns
  (pods deleted while the kubelet was down). Pods already running when the
  kubelet starts are adopted by their uid label, never duplicated.
* **Heartbeat**: a Lease renewed every ``heartbeat`` seconds in a memory-backed
  KV bucket (no disk writes); the Node object itself is re-posted only every
  five minutes. On a clean stop the node reports NotReady.

Running pods keep running while the control plane is unreachable; status is
reported again once it is back, because reports are compared to the last one
that was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from peapod.api import Pod, PodStatus, now_rfc3339
from peapod.bus import subjects as s
from peapod.bus.auth import kubelet_consumer
from peapod.bus.client import request
from peapod.bus.events import EventRecorder
from peapod.errors import PeapodError
from peapod.kubelet.backoff import Backoff
from peapod.kubelet.node import build_node
from peapod.kubelet.reconcile import Action, Plan, backoff_key, plan_pod, pod_status
from peapod.kubelet.runtime import PodInfo, PodmanRuntime, RuntimeFailure

log = structlog.get_logger("kubelet")

EVENT_TYPE_HEADER = "Peapod-Event-Type"
ORPHAN_GRACE_SECONDS = 10


@dataclass
class PodRecord:
    """What the kubelet holds for one pod key (namespace/name)."""

    pod: Pod
    deleted: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    reported: dict[str, Any] | None = None
    last_status: PodStatus | None = None
    start_time: str | None = None
    sent_events: set[str] = field(default_factory=set)


class Kubelet:
    def __init__(self, *, node_name: str, nc: NATS, js: JetStreamContext,
                 runtime: PodmanRuntime, events: EventRecorder, host_ip: str,
                 labels: dict[str, str] | None = None, relist_period: float = 1.0,
                 heartbeat: float = 10.0, status_period: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node_name = node_name
        self.nc = nc
        self.js = js
        self.runtime = runtime
        self.events = events
        self.host_ip = host_ip
        self.labels = labels or {}
        self.relist_period = relist_period
        self.heartbeat = heartbeat
        self.status_period = status_period
        self.clock = clock
        self.backoff = Backoff()
        self.pods: dict[str, PodRecord] = {}
        self.observed: dict[str, PodInfo] = {}
        self.synced = asyncio.Event()
        self.log = log.bind(node=node_name)

    # -- node ---------------------------------------------------------------------------

    async def register(self, *, ready: bool = True) -> None:
        version = await asyncio.to_thread(self.runtime.version)
        node = build_node(self.node_name, runtime_version=version, labels=self.labels,
                          address=self.host_ip, ready=ready,
                          reason="KubeletReady" if ready else "KubeletStopped",
                          message="kubelet is posting ready status" if ready
                          else "kubelet stopped")
        await request(self.nc, s.node_api(self.node_name, "register"), {"object": node.to_wire()})

    async def post_node_status(self) -> None:
        """The Node object: at start, then every ``status_period`` (it rarely changes).

        The lease is renewed first, so a node that reads Ready can be scheduled at once.
        """
        while True:
            await self.publish_lease()
            await self.register()
            await asyncio.sleep(self.status_period)

    async def renew_lease(self) -> None:
        """The heartbeat, every ``heartbeat`` seconds."""
        while True:
            await self.publish_lease()
            await asyncio.sleep(self.heartbeat)

    async def publish_lease(self) -> None:
        """A coordination.k8s.io Lease in the memory-backed bucket."""
        lease = {"holderIdentity": self.node_name, "renewTime": now_rfc3339(),
                 "leaseDurationSeconds": s.LEASE_DURATION_SECONDS}
        await self.js.publish(s.lease(self.node_name), json.dumps(lease).encode())

    # -- partition ----------------------------------------------------------------------

    async def watch_partition(self) -> None:
        """List+watch this node's pods; recreating the consumer replays the current set."""
        stream, consumer = s.NODES_STREAM, kubelet_consumer(self.node_name)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, consumer)
        info = await self.js.add_consumer(stream, config=ConsumerConfig(
            name=consumer, filter_subject=s.node_partition_all(self.node_name),
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            inactive_threshold=300, max_ack_pending=1000))
        if info.num_pending == 0:
            self._mark_synced()
        sub = await self.js.pull_subscribe_bind(consumer, stream=stream)
        while True:
            try:
                messages = await sub.fetch(batch=64, timeout=5)
            except TimeoutError:  # nats-py raises both its own and asyncio's
                self._mark_synced()
                continue
            for msg in messages:
                deleted = (msg.headers or {}).get(EVENT_TYPE_HEADER) == "DELETED"
                self.receive(Pod.model_validate(json.loads(msg.data)), deleted=deleted)
                await msg.ack()
                if msg.metadata.num_pending == 0:
                    self._mark_synced()

    def _mark_synced(self) -> None:
        if not self.synced.is_set():
            self.log.info("partition_synced", pods=len(self.pods))
            self.synced.set()

    def receive(self, pod: Pod, *, deleted: bool) -> None:
        key = pod.key
        record = self.pods.get(key)
        if record is None:
            record = self.pods[key] = PodRecord(pod=pod, deleted=deleted,
                                                start_time=pod.status.start_time
                                                if pod.status else None)
        else:
            if record.pod.metadata.uid != pod.metadata.uid:
                record.reported = None
                record.start_time = None
            record.pod, record.deleted = pod, deleted
        record.wake.set()
        if record.task is None or record.task.done():
            record.task = asyncio.create_task(self._worker(key), name=f"pod:{key}")

    # -- relist -------------------------------------------------------------------------

    async def relist(self) -> None:
        while True:
            pods = await asyncio.to_thread(self.runtime.list_pods)
            self.observed = {p.uid: p for p in pods}
            for record in self.pods.values():
                record.wake.set()
            if self.synced.is_set():
                await self._remove_orphans()
            await asyncio.sleep(self.relist_period)

    async def _remove_orphans(self) -> None:
        wanted = {r.pod.metadata.uid for r in self.pods.values() if not r.deleted}
        for uid, info in list(self.observed.items()):
            if uid in wanted or any(r.pod.metadata.uid == uid for r in self.pods.values()):
                continue
            self.log.info("orphan_removed", pod=f"{info.namespace}/{info.name}", uid=uid)
            await asyncio.to_thread(self.runtime.remove_pod, uid,
                                    grace_seconds=ORPHAN_GRACE_SECONDS)
            self.observed.pop(uid, None)

    # -- per-pod worker -----------------------------------------------------------------

    async def _worker(self, key: str) -> None:
        while True:
            record = self.pods.get(key)
            if record is None:
                return
            await record.wake.wait()
            record.wake.clear()
            try:
                finished = await self.sync_pod(record)
            except Exception:
                self.log.exception("sync_failed", pod=key)
                await asyncio.sleep(1)
                continue
            if finished and self.pods.get(key) is record and not record.wake.is_set():
                del self.pods[key]
                return

    async def sync_pod(self, record: PodRecord) -> bool:
        """One reconcile of one pod; True when the kubelet is done with it."""
        pod = record.pod
        uid = pod.metadata.uid or ""
        plog = self.log.bind(pod=pod.key, uid=uid)
        observed = self.observed.get(uid)
        if record.deleted or pod.metadata.deletion_timestamp:
            await self._kill_pod(pod, observed, plog)
            if not record.deleted:
                await self._finalize(pod, plog)
            return record.deleted
        plan = plan_pod(pod, observed, backoff=self.backoff, now=self.clock())
        if plan.actions:
            await self._execute(pod, plan, plog)
            observed = await asyncio.to_thread(self.runtime.get_pod, uid)
            if observed:
                self.observed[uid] = observed
        for name, (reason, _message) in plan.waiting.items():
            if reason == "CrashLoopBackOff":
                await self._event_once(record, name, reason="BackOff", type="Warning",
                                       message=f"Back-off restarting failed container {name} in "
                                               f"pod {pod.metadata.name}_{pod.metadata.namespace}"
                                               f"({uid})")
        await self._report(record, observed, plan, plog)
        return False

    async def _execute(self, pod: Pod, plan: Plan, plog: Any) -> None:
        for action in plan.actions:
            if action.kind == "create_pod":
                pod_id = await asyncio.to_thread(self.runtime.create_pod, pod)
                plog.info("pod_sandbox_created", podman_pod=pod_id[:12])
            elif action.kind == "remove_container" and action.container_id:
                await asyncio.to_thread(self.runtime.remove_container, action.container_id)
            elif action.kind == "start":
                await self._start(pod, action, plan, plog)

    async def _start(self, pod: Pod, action: Action, plan: Plan, plog: Any) -> None:
        name = action.container or ""
        spec = next(c for c in pod.spec.containers if c.name == name)
        obj = pod.to_wire()
        path = f"spec.containers{{{name}}}"
        try:
            pulled = await asyncio.to_thread(self.runtime.ensure_image, spec.image,
                                             policy=spec.image_pull_policy or "IfNotPresent")
            await self.events.record(obj, reason="Pulled", message=(
                f'Successfully pulled image "{spec.image}"' if pulled else
                f'Container image "{spec.image}" already present on machine'))
            if action.restart_count > 0:
                self.backoff.started(backoff_key(pod, name), self.clock())
            container_id = await asyncio.to_thread(self.runtime.run_container, pod, name,
                                                   restart_count=action.restart_count)
        except RuntimeFailure as exc:
            self.backoff.started(backoff_key(pod, name), self.clock())
            plan.waiting[name] = (exc.reason, exc.message)
            plog.warning("container_failed", container=name, reason=exc.reason,
                         error=exc.message)
            await self.events.record(obj, reason="Failed", type="Warning",
                                     message=f"Error: {exc.reason}: {exc.message}")
            return
        plog.info("container_started", container=name, restart_count=action.restart_count,
                  container_id=container_id[:12], field_path=path)
        await self.events.record(obj, reason="Created", message=f"Created container {name}")
        await self.events.record(obj, reason="Started", message=f"Started container {name}")

    async def _kill_pod(self, pod: Pod, observed: PodInfo | None, plog: Any) -> None:
        if observed is None:
            observed = await asyncio.to_thread(self.runtime.get_pod, pod.metadata.uid or "")
        if observed is None:
            return
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        obj = pod.to_wire()
        for info in observed.containers:
            if info.state == "running":
                await self.events.record(obj, reason="Killing",
                                         message=f"Stopping container {info.name}")
        plog.info("pod_killing", grace_seconds=grace)
        await asyncio.to_thread(self.runtime.remove_pod, pod.metadata.uid or "",
                                grace_seconds=grace)
        self.observed.pop(pod.metadata.uid or "", None)
        self.backoff.forget(f"{pod.metadata.uid}/")
        plog.info("pod_killed")

    async def _finalize(self, pod: Pod, plog: Any) -> None:
        try:
            await request(self.nc, s.node_api(self.node_name, "finalize"), {
                "namespace": pod.metadata.namespace, "name": pod.metadata.name,
                "uid": pod.metadata.uid})
        except PeapodError as exc:
            plog.info("finalize_failed", error=exc.message)

    async def _report(self, record: PodRecord, observed: PodInfo | None, plan: Plan,
                      plog: Any) -> None:
        pod = record.pod
        if record.start_time is None:
            record.start_time = now_rfc3339()
        status = pod_status(pod, observed, waiting=plan.waiting, host_ip=self.host_ip,
                            start_time=record.start_time, previous=record.last_status,
                            now=now_rfc3339())
        wire = status.to_wire()
        if wire == record.reported:
            return
        try:
            await request(self.nc, s.node_api(self.node_name, "status"), {
                "namespace": pod.metadata.namespace, "name": pod.metadata.name,
                "uid": pod.metadata.uid, "status": wire})
        except PeapodError as exc:
            plog.info("status_not_reported", error=exc.message)
            return
        record.reported, record.last_status = wire, status
        plog.debug("status_reported", phase=status.phase)

    async def _event_once(self, record: PodRecord, container: str, *, reason: str,
                          message: str, type: str) -> None:
        """One event per back-off period, not one per relist tick."""
        marker = f"{reason}/{container}/{self.backoff.delay(backoff_key(record.pod, container))}"
        if marker in record.sent_events:
            return
        record.sent_events.add(marker)
        await self.events.record(record.pod.to_wire(), reason=reason, message=message, type=type)
