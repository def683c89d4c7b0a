"""The kubelet's loops: its partition, one worker per pod, podman relist, node status.

* **Partition**: one JetStream consumer over ``peapod.node.<node>.>``,
  recreated at start with "last value per subject", is the kubelet's
  list+watch: it first receives every pod bound here, then every change. The
  kubelet cannot see other nodes' pods (the NATS permissions forbid it).
* **One worker per pod** (kopf's design): updates for one pod are handled in
  order by its own task, while different pods proceed in parallel. Podman
  calls run in the kubelet's own threads (``threads.py``) and grace periods
  are waited out on the event loop (``termination.py``), so a slow stop, a
  slow pull or a burst of starts never holds back another pod's status.
* **Relist**: every second one ``list_pods`` call (in a thread of its own)
  snapshots podman and wakes every worker: the loop is level-triggered, a
  missed event delays, never breaks. Once the partition is synced, podman
  pods that no pod object owns (deleted while the kubelet was down) are
  stopped as orphans, each in its own task, with Kubernetes' one-second
  orphan grace. Pods already running when the kubelet starts are adopted by
  their uid label, never duplicated.
* **Failures wait**: a sandbox podman cannot create, a container that cannot
  be created or started, an image that cannot be pulled are retried after
  Kubernetes' pod-worker back-off (10 s), and pulls and crash loops after
  their own back-off (10 s doubling to 5 min); meanwhile the status shows why
  (the *reason cache*) and an event says it once per attempt.
* **Heartbeat**: a Lease renewed every ``heartbeat`` seconds in a memory-backed
  KV bucket (no disk writes); the Node object itself is re-posted only every
  five minutes. On a clean stop the node reports NotReady.

Running pods keep running while the control plane is unreachable; status is
reported again once it is back, because reports are compared to the last one
that was accepted (nothing is sent while the connection is down). A kubelet
that starts without a control plane runs its last-known pods from disk
(``start_offline``, ``lastknown.py``); once its partition is read, those the
control plane no longer has are stopped.

**Static pods** come from the node's manifest files (``manifests.py``,
``run_static``), with or without a control plane, and are never saved with
the last-known pods. Their mirror pods on the partition are handed to
``mirrors.py`` and never run; their status is reported on their mirror pod.
An edited manifest is a new pod: the old one is stopped before the new one
starts, as Kubernetes does for static pods of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from peapod.api import Container, Pod, PodStatus, now_rfc3339, parse_rfc3339
from peapod.api.decode import decode_model
from peapod.api.quantity import cpu_millis, memory_bytes, parse_quantity
from peapod.api.resources import EPHEMERAL_STORAGE
from peapod.api.static import is_mirror
from peapod.bus import subjects as s
from peapod.bus.auth import kubelet_consumer
from peapod.bus.client import request
from peapod.bus.events import EventRecorder
from peapod.bus.leases import LeaseKeeper
from peapod.errors import Invalid, PeapodError
from peapod.kubelet import admit, resize, storage, volumes
from peapod.kubelet.actions import Target, named_ports
from peapod.kubelet.backoff import Backoff
from peapod.kubelet.configure import Configurator
from peapod.kubelet.hooks import run_hook
from peapod.kubelet.images import IMAGE_REASONS, ImageFailure, ImagePuller
from peapod.kubelet.lastknown import LastKnown
from peapod.kubelet.manifests import ManifestDir
from peapod.kubelet.mirrors import MirrorPods
from peapod.kubelet.node import build_node, storage_capacity
from peapod.kubelet.probes import ProbeManager
from peapod.kubelet.reconcile import (
    Action,
    Plan,
    ProbeView,
    attempts,
    backoff_key,
    container_spec,
    field_path,
    is_sidecar,
    plan_pod,
    pod_status,
)
from peapod.kubelet.runtime import ContainerInfo, PodInfo, PodmanRuntime, RuntimeDown, RuntimeFailure
from peapod.kubelet.termination import grace_seconds, stop_container, terminate_pod
from peapod.kubelet.threads import PodmanThreads

log = structlog.get_logger("kubelet")

EVENT_TYPE_HEADER = "Peapod-Event-Type"
# Kubernetes' pod worker retries a failed sync after backOffPeriod (10 s), not at once.
SYNC_RETRY_SECONDS = 10.0
RUNTIME_RETRY_SECONDS = 5.0  # how often a kubelet whose podman is gone starts its service again
SANDBOX = ""  # the key of the pod's sandbox in PodRecord.retry_at (container names are never empty)


@dataclass(frozen=True)
class Unsent:
    """A status report waiting for the one in flight."""

    payload: dict[str, Any]  # namespace, name, the uid it is for (a mirror pod's), status
    status: PodStatus
    pod_uid: str  # the pod's own uid when it was made


@dataclass
class Made:
    """What podman holds of a pod after the kubelet changed it: its sandbox and the
    containers the kubelet knows it has (it makes them all; a relist corrects the rest)."""

    pod_id: str | None
    containers: list[str]

    def forget(self, container_id: str) -> None:
        self.containers = [c for c in self.containers if c != container_id]


@dataclass
class PodRecord:
    """What the kubelet holds for one pod key (namespace/name)."""

    pod: Pod
    deleted: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    # the status report in flight, and the newest one waiting for it (the worker never waits)
    reporting: asyncio.Task[None] | None = None
    unsent: Unsent | None = None
    reported: dict[str, Any] | None = None
    last_status: PodStatus | None = None
    start_time: str | None = None
    # why a container is not running: (reason, message), until it runs (Kubernetes' ReasonCache)
    reasons: dict[str, tuple[str, str]] = field(default_factory=dict)
    # earliest next attempt (clock time) of a container, or of the sandbox (key SANDBOX)
    retry_at: dict[str, float] = field(default_factory=dict)
    # container -> the exited attempt whose BackOff event was sent
    backoff_events: dict[str, str] = field(default_factory=dict)
    # (reason, message) once the pod failed for good here (activeDeadlineSeconds, or
    # evicted for an emptyDir over its sizeLimit): nothing is started again, the status
    # says Failed, and running containers are stopped (grace 0 for an eviction)
    terminal: tuple[str, str] | None = None
    sizes_checked: float = float("-inf")  # clock time of the last emptyDir sizeLimit check
    acted: float = float("-inf")  # loop time of the last podman change made for this pod
    # podman's view of this pod read right after that change, until a newer relist
    fresh: PodInfo | None = None
    fresh_at: float = float("-inf")
    # started from the node's last-known pods without a control plane, not yet confirmed
    # by the partition: dropped (its containers stopped) if the partition no longer has it
    from_disk: bool = False
    static: bool = False  # from a manifest file on the node (manifests.py)
    # earlier static pods of this name (their file edited), stopped before this one starts
    replaced: list[Pod] = field(default_factory=list)
    reported_to: str | None = None  # the uid of the API's pod the status was reported on
    # in-place resize (resize.py): the cpu/memory allocated to each container, why a resize
    # waits (PodResizePending reason, message), podman's error from the last update, and
    # what each running container (by id) was updated to
    allocated: dict[str, resize.Resources] | None = None
    resize_pending: tuple[str, str] | None = None
    resize_error: str | None = None
    updated: dict[str, resize.Resources] = field(default_factory=dict)
    admitted: bool = False  # checked against the node's resources (admit.py)

    def forget_incarnation(self) -> None:
        """A new pod (new uid) under the same name starts with a clean slate."""
        self.reported = self.last_status = self.start_time = self.terminal = self.unsent = None
        self.reasons, self.retry_at, self.backoff_events = {}, {}, {}
        self.allocated = self.resize_pending = self.resize_error = None
        self.updated, self.admitted = {}, False


def _phase(record: PodRecord) -> str | None:
    """The pod's phase as last reported here, else as the API had it (a restarted kubelet)."""
    status = record.last_status or record.pod.status
    return status.phase if status else None


class Kubelet:
    def __init__(self, *, node_name: str, nc: NATS, js: JetStreamContext,
                 runtime: PodmanRuntime, events: EventRecorder, host_ip: str,
                 labels: dict[str, str] | None = None, relist_period: float = 1.0,
                 extended_resources: dict[str, str] | None = None,
                 heartbeat: float = 10.0, status_period: float = 300.0,
                 clock: Callable[[], float] = time.time,
                 threads: PodmanThreads | None = None,
                 last_known: LastKnown | None = None) -> None:
        self.node_name = node_name
        self.nc = nc
        self.js = js
        self.runtime = runtime
        self.events = events
        self.host_ip = host_ip
        self.labels = labels or {}
        self.extended_resources = extended_resources or {}
        self.relist_period = relist_period
        self.heartbeat = heartbeat
        self.status_period = status_period
        self.clock = clock  # wall clock: back-off is counted from podman's finish times
        self.threads = threads or PodmanThreads()
        self.backoff = Backoff()
        self.configs = Configurator(nc=nc, node_name=node_name, runtime=runtime,
                                    threads=self.threads, host_ip=host_ip)
        self.images = ImagePuller(runtime=runtime, threads=self.threads, events=events,
                                  clock=clock, pull_secrets=self.configs.pull_secrets,
                                  on_backoff_change=self._pull_backoff_changed)
        self.pods: dict[str, PodRecord] = {}
        self.observed: dict[str, PodInfo] = {}
        self.observed_since = float("-inf")  # loop time the last relist's list call began
        self.orphans: dict[str, asyncio.Task[None]] = {}
        self.removed: dict[str, float] = {}  # uid -> loop time its podman pod was removed
        self.synced = asyncio.Event()
        self.lease = LeaseKeeper(js, node_name, period=heartbeat)
        self.log = log.bind(node=node_name)
        self.probes = ProbeManager(exec_fn=self._exec, on_change=self._probe_changed,
                                   on_failure=self._probe_failed, event=self._warning,
                                   clock=clock, host_ip=host_ip, log=self.log,
                                   paused=lambda: self.runtime_down is not None)
        self.stopping: dict[str, asyncio.Task[None]] = {}  # container id -> its stop
        self.last_known = last_known
        self.last_known_changed = last_known is not None
        self.started_offline = False  # running the last-known pods, the control plane away
        if last_known is not None:  # the pull back-off its predecessor was counting
            for key, entry in last_known.load_pull_backoff().items():
                self.images.backoff.restore(key, entry)
        self.mirrors = MirrorPods(node_name=node_name)
        self._name_taken: set[str] = set()  # keys of API pods refused for a static pod's name
        # podman's socket stopped answering at this loop time (None: it answers); meanwhile the
        # node is NotReady, pods are left as they are, and podman's service is started again
        self.runtime_down: float | None = None
        self.start_runtime: Callable[[], object] | None = None
        self._runtime_retry_at = float("-inf")
        self._runtime_version = "unknown"
        self._side_work: set[asyncio.Task[object]] = set()

    def attach(self, nc: NATS, js: JetStreamContext) -> None:
        """The connection, once made: a kubelet that started offline reports from now on."""
        self.nc, self.js = nc, js
        self.configs.nc = nc
        self.lease.js = js
        self.events.attach(nc)

    def start_offline(self, pods: list[Pod]) -> None:
        """Run the node's last-known pods while the control plane cannot be reached."""
        self.log.info("offline_start", pods=len(pods))
        self.started_offline = True
        for pod in pods:
            self.receive(pod, deleted=False, from_disk=True)

    def run_static(self, pods: dict[str, Pod]) -> None:
        """Make the static pods those of the manifests: start new ones, replace edited ones,
        stop those whose file is gone."""
        for key, record in self.pods.items():
            if record.static and not record.deleted and key not in pods:
                self.log.info("static_pod_removed", pod=key, uid=record.pod.metadata.uid)
                record.deleted = True
                record.wake.set()
        for key, pod in pods.items():
            self._add_static(key, pod)
        self.mirrors.wake.set()

    def _add_static(self, key: str, pod: Pod) -> None:
        record = self.pods.get(key)
        if record is None:
            record = self.pods[key] = PodRecord(pod=pod, static=True)
        elif not record.static:
            self._refuse_name(key, "static_pod_name_taken", record.pod)
            return
        elif record.pod.metadata.uid == pod.metadata.uid and not record.deleted:
            return
        elif record.pod.metadata.uid != pod.metadata.uid:
            if not record.deleted:
                record.replaced.append(record.pod)
            record.forget_incarnation()
            record.pod = pod
        record.deleted = False
        self.log.info("static_pod_added", pod=key, uid=pod.metadata.uid)
        record.wake.set()
        if record.task is None or record.task.done():
            record.task = asyncio.create_task(self._worker(key), name=f"pod:{key}")

    async def watch_manifests(self, manifests: ManifestDir, *, period: float) -> None:
        """Check the manifest directory every ``period`` seconds (``manifests.py``). A first
        check applies the current pods whatever it finds: a read that a cancelled run of this
        loop left in its thread may have taken the last change with it."""
        first = True
        while True:
            pods = await asyncio.to_thread(manifests.read)
            if pods is not None or first:
                self.run_static(manifests.current() if pods is None else pods)
            first = False
            await asyncio.sleep(period)

    def static_pods(self) -> dict[str, Pod]:
        return {key: r.pod for key, r in self.pods.items() if r.static and not r.deleted}

    async def sync_mirrors(self) -> None:
        await self.mirrors.run(self.nc, self.static_pods, synced=self.synced)

    def _refuse_name(self, key: str, event: str, other: Pod) -> None:
        if key not in self._name_taken:
            self._name_taken.add(key)
            self.log.warning(event, pod=key, uid=other.metadata.uid)

    def close(self) -> None:
        self.probes.close()
        self.threads.shutdown()

    # -- node ---------------------------------------------------------------------------

    async def register(self, *, stopping: bool = False) -> None:
        if self.runtime_down is None:
            with contextlib.suppress(OSError):  # it just went away: the relist will tell
                self._runtime_version = await self.threads.call(self.runtime.version)
        if stopping:
            ready, reason, message = False, "KubeletStopped", "kubelet stopped"
        elif self.runtime_down is not None:  # Kubernetes' runtimeState error
            ready, reason, message = False, "KubeletNotReady", "container runtime is down"
        else:
            ready, reason, message = True, "KubeletReady", "kubelet is posting ready status"
        node = build_node(self.node_name, runtime_version=self._runtime_version,
                          labels=self.labels, extended_resources=self.extended_resources,
                          ephemeral_storage=storage_capacity(self.runtime.state_dir),
                          address=self.host_ip, ready=ready, reason=reason, message=message)
        stored = await request(self.nc, s.node_api(self.node_name, "register"),
                               {"object": node.to_wire()})
        uid = (stored.get("metadata") or {}).get("uid") if isinstance(stored, dict) else None
        if uid and uid != self.mirrors.node_uid:  # mirror pods are owned by this Node
            self.mirrors.node_uid = uid
            self.mirrors.wake.set()

    async def post_node_status(self) -> None:
        """The Node object: at start, then every ``status_period`` (it rarely changes).

        The lease is renewed first, so a node that reads Ready can be scheduled at once.
        """
        while True:
            await self.lease.renew()  # a failure is the lease task's to log and retry
            await self.register()
            await asyncio.sleep(self.status_period)

    async def renew_lease(self) -> None:
        """The heartbeat: a coordination.k8s.io Lease in the memory-backed bucket, every
        ``heartbeat`` seconds, kept through a missing bucket or a lost link."""
        await self.lease.run()

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
        try:
            while True:
                try:
                    messages = await sub.fetch(batch=64, timeout=5)
                except TimeoutError:  # nats-py raises both its own and asyncio's
                    self._mark_synced()
                    continue
                for msg in messages:
                    if (pod := self._partition_pod(msg)) is not None:
                        deleted = (msg.headers or {}).get(EVENT_TYPE_HEADER) == "DELETED"
                        self.receive(pod, deleted=deleted)
                    await msg.ack()
                    if msg.metadata.num_pending == 0:
                        self._mark_synced()
        finally:  # a pull subscription left behind makes the connection's drain wait 30 s
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _partition_pod(self, msg: Msg) -> Pod | None:
        """The pod a partition message carries, or None after one log line: only the
        apiserver publishes here, but a message that is not a pod of this node at that
        subject must neither stop the partition nor reach podman."""
        try:
            pod = decode_model(msg.data, Pod)
            meta = pod.metadata
            if pod.spec.node_name != self.node_name:
                raise Invalid(f"pod {meta.namespace}/{meta.name} is bound to node "
                              f"{pod.spec.node_name!r}")
            if msg.subject != s.node_partition(self.node_name, meta.namespace or "default",
                                               meta.name or "-"):
                raise Invalid(f"pod {meta.namespace}/{meta.name} does not belong on this subject")
        except Invalid as exc:
            self.log.warning("partition_message_skipped", subject=msg.subject,
                             seq=msg.metadata.sequence.stream, reason=exc.message)
            return None
        return pod

    def _mark_synced(self) -> None:
        if not self.synced.is_set():
            self.log.info("partition_synced", pods=len(self.pods))
            self.synced.set()
            for key, record in self.pods.items():
                if record.from_disk:  # the control plane no longer has it
                    self.log.info("last_known_pod_gone", pod=key, uid=record.pod.metadata.uid)
                    record.from_disk, record.deleted = False, True
                    record.wake.set()

    def receive(self, pod: Pod, *, deleted: bool, from_disk: bool = False) -> None:
        key = pod.key
        if is_mirror(pod):  # a static pod's copy in the API: the file is the truth
            if not from_disk:
                self.mirrors.observe(pod, deleted=deleted)
            return
        record = self.pods.get(key)
        if record is not None and record.static:
            self._refuse_name(key, "pod_name_taken_by_static_pod", pod)
            return
        if record is None:
            record = self.pods[key] = PodRecord(pod=pod, deleted=deleted,
                                                start_time=pod.status.start_time
                                                if pod.status else None)
        else:
            if record.pod.metadata.uid != pod.metadata.uid:
                record.forget_incarnation()
            record.pod, record.deleted = pod, deleted
        record.from_disk = from_disk
        self.last_known_changed = True
        record.wake.set()
        if record.task is None or record.task.done():
            record.task = asyncio.create_task(self._worker(key), name=f"pod:{key}")

    # -- relist and orphans -------------------------------------------------------------

    async def relist(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                pods = await self.threads.relist(self.runtime.list_pods)
            except RuntimeDown as exc:
                await self._runtime_lost(exc)
                await asyncio.sleep(self.relist_period)
                continue
            if self.runtime_down is not None:
                await self._runtime_back()
            self.observed = {p.uid: p for p in pods}
            self.observed_since = began
            self.removed = {uid: at for uid, at in self.removed.items() if at >= began}
            for record in self.pods.values():
                record.wake.set()
            if self.synced.is_set():
                self._remove_orphans()
            self._save_last_known()
            await asyncio.sleep(self.relist_period)

    async def _runtime_lost(self, exc: RuntimeDown) -> None:
        """podman does not answer: say so once (log, NotReady, event), leave every pod as it
        is (conmon keeps their containers running), and start podman's service again if
        nothing answers on its socket, every RUNTIME_RETRY_SECONDS."""
        now = asyncio.get_running_loop().time()
        if self.runtime_down is None:
            self.runtime_down = now
            self.log.warning("podman_unreachable", error=str(exc), probes="paused")
            await self._node_changed("NodeNotReady")
        if self.start_runtime is not None and now >= self._runtime_retry_at:
            self._runtime_retry_at = now + RUNTIME_RETRY_SECONDS
            try:
                await asyncio.to_thread(self.start_runtime)
            except PeapodError as failure:
                self.log.warning("podman_service_not_started", error=failure.message,
                                 retry_in=RUNTIME_RETRY_SECONDS)

    async def _runtime_back(self) -> None:
        down_for = asyncio.get_running_loop().time() - (self.runtime_down or 0.0)
        self.runtime_down = None
        self.log.info("podman_reachable_again", down_seconds=round(down_for, 1))
        await self._node_changed("NodeReady")

    async def _node_changed(self, reason: str) -> None:
        """Post the Node's Ready condition now, with Kubernetes' event for the change."""
        try:
            await self.register()
        except PeapodError as exc:  # reported with the next node status, or once connected
            self.log.info("node_status_not_posted", error=exc.message)
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "uid": self.mirrors.node_uid or None}}
        await self.events.record(node, reason=reason,
                                 message=f"Node {self.node_name} status is now: {reason}")

    def _pull_backoff_changed(self) -> None:
        """Saved at once: a kubelet restarted right after a failed pull must know it."""
        self.last_known_changed = True
        self._save_last_known()

    def _save_last_known(self) -> None:
        if self.last_known is None or not self.last_known_changed:
            return
        if not self.synced.is_set() and not self.started_offline:
            return  # what the node knew is not loaded yet: saving now would forget it
        self.last_known_changed = False
        pods = [(r.pod, r.last_status.phase if r.last_status else None)
                for r in self.pods.values()
                if not r.deleted and not r.pod.metadata.deletion_timestamp and not r.static]
        try:
            self.last_known.save(pods, self.images.backoff.entries(now=self.clock()))
        except OSError as exc:  # a full or read-only disk: the pods run on, the next change retries
            self.log.warning("last_known_pods_not_saved", error=str(exc))

    def _remove_orphans(self) -> None:
        """Stop, each in its own task, the podman pods no pod object owns."""
        owned = {p.metadata.uid for r in self.pods.values() for p in [r.pod, *r.replaced]}
        for uid, info in self.observed.items():
            # removed after this snapshot was taken: not an orphan, just gone
            if uid not in owned and uid not in self.orphans and uid not in self.removed:
                self.orphans[uid] = asyncio.create_task(self._remove_orphan(info),
                                                        name=f"orphan:{uid}")

    async def _remove_orphan(self, info: PodInfo) -> None:
        olog = self.log.bind(namespace=info.namespace, name=info.name, uid=info.uid)
        try:
            found = await terminate_pod(
                uid=info.uid, runtime=self.runtime, threads=self.threads,
                grace=lambda: grace_seconds(None, object_gone=True), log=olog)
            self.removed[info.uid] = asyncio.get_running_loop().time()
            if found:
                olog.info("orphan_removed")
        except Exception:  # tried again on the next relist
            olog.exception("orphan_not_removed")
        finally:
            self.orphans.pop(info.uid, None)

    # -- per-pod worker -----------------------------------------------------------------

    async def _worker(self, key: str) -> None:
        while True:
            record = self.pods.get(key)
            if record is None:
                return
            await record.wake.wait()
            record.wake.clear()
            if self.runtime_down is not None:
                continue  # nothing can be done in podman: the relist wakes us once it is back
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
        plog = self.log.bind(namespace=pod.metadata.namespace, name=pod.metadata.name, uid=uid)
        while record.replaced:  # an edited static pod: the old one goes first
            old = record.replaced[0]
            await self._kill_pod(PodRecord(pod=old), plog.bind(uid=old.metadata.uid))
            record.replaced.remove(old)
        if record.deleted or pod.metadata.deletion_timestamp:
            await self._kill_pod(record, plog)
            if not record.deleted and record.pod.metadata.uid == uid:
                await self._finalize(pod, plog)
            return record.deleted
        observed = await self._observe(record, uid)
        if not record.admitted:
            await self._admit(record, observed, plog)
        now = self.clock()
        await self._check_sizes(record, observed, plog, now=now)
        await self._check_deadline(record, observed, now=now)
        self.probes.sync(pod, observed if record.terminal is None else None)
        if record.terminal is None:
            await self._resize(record, observed, plog)
        plan = Plan() if record.terminal else plan_pod(pod, observed, backoff=self.backoff,
                                                       now=now, probes=self.probes.view(uid))
        made = await self._execute(record, plan, observed, plog, now=now) \
            if plan.actions else None
        if made is not None:
            record.acted = asyncio.get_running_loop().time()
            observed = await self._observe(record, uid, made=made)
            self.probes.sync(pod, observed)
        await self._crash_loop_events(record, observed, plan)
        await self.events.settled(_about(pod))  # a status never runs ahead of the events
        await self._report(record, observed, plan, plog, probes=self.probes.view(uid))
        return False

    async def _observe(self, record: PodRecord, uid: str, *,
                       made: Made | None = None) -> PodInfo | None:
        """The pod as podman shows it, never from a relist older than our last change.

        After a change the pod is read once; that reading serves every wake-up until
        a relist that began after the change (one list call for all pods) replaces it.
        ``made``: what the change left (the sandbox and the containers the kubelet
        knows), so that the reading inspects those few containers instead of listing
        the node's every one, which in a burst of pods holds podman's locks longest.
        """
        if record.acted < self.observed_since:
            return self.observed.get(uid)
        if record.fresh_at > record.acted:
            return record.fresh
        record.fresh_at = asyncio.get_running_loop().time()
        if made is not None and made.pod_id:
            record.fresh = await self.threads.call(self.runtime.read_pod, uid, made.pod_id,
                                                   made.containers)
        else:
            record.fresh = await self.threads.call(self.runtime.get_pod, uid)
        return record.fresh

    async def _execute(self, record: PodRecord, plan: Plan, observed: PodInfo | None,
                       plog: Any, *, now: float) -> Made | None:
        """Carry out the plan's steps whose retry time has come; what podman then holds
        of the pod if anything changed, else None."""
        made = Made(pod_id=observed.podman_id if observed else None,
                    containers=[c.id for c in observed.containers] if observed else [])
        acted = False
        looked_up: dict[str, asyncio.Task[bool]] = {}  # container -> is its image present
        for action in plan.actions:
            if action.kind == "create_pod":
                if now < record.retry_at.get(SANDBOX, 0.0):
                    break  # nothing can start without the sandbox
                acted = True
                looked_up = self._look_up_image(record.pod, plan)
                made = Made(pod_id=await self._create_sandbox(record, plog), containers=[])
                if made.pod_id is None:
                    break
                self._background(self.threads.call(self.runtime.pod_ip, made.pod_id))
            elif action.kind == "stop" and action.container_id:
                self._stop(record.pod, action.container or "", action.container_id,
                           grace=record.pod.spec.termination_grace_period_seconds,
                           message=f"Stopping container {action.container}")
            elif action.kind == "remove_container" and action.container_id:
                await self.threads.call(self.runtime.remove_container, action.container_id)
                made.forget(action.container_id)
                acted = True
            elif action.kind == "start" and now >= record.retry_at.get(action.container or "", 0):
                started = await self._start(record, action, plog, pod_id=made.pod_id,
                                            looked_up=looked_up.pop(action.container or "", None))
                if started:
                    made.containers.append(started)
                acted = True
        return made if acted else None

    def _look_up_image(self, pod: Pod, plan: Plan) -> dict[str, asyncio.Task[bool]]:
        """Whether the image of the first container to start is present, asked of podman
        while it makes the sandbox; the answer is used only by this sync's start."""
        first = next((a.container for a in plan.actions if a.kind == "start" and a.container),
                     None)
        if first is None:
            return {}
        task = self.images.look_up(container_spec(pod, first).image)
        task.add_done_callback(_quiet)  # a sandbox that fails leaves the answer unread
        return {first: task}

    def _background(self, work: Coroutine[Any, Any, object]) -> None:
        """Podman work whose answer is cached for later (the pod's address): nobody waits."""
        task = asyncio.create_task(work)
        self._side_work.add(task)
        task.add_done_callback(self._side_work.discard)
        task.add_done_callback(_quiet)

    async def _create_sandbox(self, record: PodRecord, plog: Any) -> str | None:
        pod = record.pod
        try:
            pod_id = await self.threads.call(self.runtime.create_pod, pod)
        except RuntimeFailure as exc:
            message = f"Failed to create pod sandbox: {exc.message}"
            record.retry_at[SANDBOX] = self.clock() + SYNC_RETRY_SECONDS
            for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
                record.reasons[container.name] = ("CreatePodSandboxError", message)
            plog.warning("pod_sandbox_failed", error=exc.message, retry_in=SYNC_RETRY_SECONDS)
            await self.events.record(pod.to_wire(), reason="FailedCreatePodSandBox",
                                     type="Warning", message=message)
            return None
        record.retry_at.pop(SANDBOX, None)
        record.reasons = {name: why for name, why in record.reasons.items()
                          if why[0] != "CreatePodSandboxError"}
        plog.info("pod_sandbox_created", podman_pod=pod_id[:12])
        return pod_id

    async def _start(self, record: PodRecord, action: Action, plog: Any, *,
                     pod_id: str | None,
                     looked_up: asyncio.Task[bool] | None = None) -> str | None:
        """Start one container; its id, or None if it could not be started."""
        pod = record.pod
        name = action.container or ""
        spec = container_spec(pod, name)
        obj = pod.to_wire()
        try:
            await self.images.ensure(pod, spec, looked_up=looked_up)
            resolved = await self.configs.prepare(pod, spec, pod_id=pod_id)
            entry = None
            if action.restart_count > 0:  # Kubernetes' doBackOff: counted from the last exit
                now = self.clock()
                entry = self.backoff.next(backoff_key(pod, name), action.finished_at or now,
                                          now=now)
            container_id = await self.threads.call(
                self.runtime.run_container, resize.with_allocated(pod, self._allocated(record)),
                name, restart_count=action.restart_count,
                resolved=resolved, pod_id=pod_id, backoff=entry)
        except RuntimeFailure as exc:
            if exc.reason == "CreateContainerError":  # maybe its image went: ask podman again
                self.images.forget(spec.image)
            failed_at = self.clock()
            retry = (exc.retry_at if isinstance(exc, ImageFailure) else None) or \
                failed_at + SYNC_RETRY_SECONDS
            record.reasons[name] = (exc.reason, exc.message)
            record.retry_at[name] = retry
            plog.warning("container_failed", container=name, reason=exc.reason,
                         error=exc.message, retry_in=round(retry - failed_at, 1))
            detail = exc.reason if exc.reason in IMAGE_REASONS else exc.message
            event = getattr(exc, "event_reason", "Failed")  # FailedMount says what it is itself
            await self.events.record(obj, reason=event, type="Warning",
                                     message=f"Error: {detail}" if event == "Failed" else detail)
            return None
        record.reasons.pop(name, None)
        record.retry_at.pop(name, None)
        plog.info("container_started", container=name, restart_count=action.restart_count,
                  container_id=container_id[:12], field_path=field_path(pod, name))
        # sent while the kubelet reads the pod back from podman; the status waits for them
        self.events.post(obj, reason="Created", message=f"Created container {name}")
        self.events.post(obj, reason="Started", message=f"Started container {name}")
        if spec.lifecycle is not None and spec.lifecycle.post_start is not None:
            await self._post_start(record, spec, container_id, pod_id=pod_id, plog=plog)
        return container_id

    # -- in-place resize (resize.py) ------------------------------------------------------

    def _allocated(self, record: PodRecord) -> dict[str, resize.Resources]:
        if record.allocated is None:  # first sight: the pod runs with what it asks for
            record.allocated = resize.pod_wanted(record.pod)
        return record.allocated

    def _allocatable(self) -> dict[str, int]:
        """What the node advertises (node.py), as the kubelet's admission counts it."""
        cpu, memory = self.configs.allocatable["cpu"], self.configs.allocatable["memory"]
        return {"cpu": cpu_millis(cpu), "memory": memory_bytes(memory),
                EPHEMERAL_STORAGE: storage_capacity(self.runtime.state_dir),
                **{k: int(parse_quantity(v)) for k, v in self.extended_resources.items()}}

    def _active_others(self, record: PodRecord) -> list[Pod]:
        """The node's other admitted pods that hold resources, with what was allocated."""
        return [resize.with_allocated(r.pod, self._allocated(r)) for r in self.pods.values()
                if r is not record and r.admitted and not r.deleted and r.terminal is None
                and _phase(r) not in ("Succeeded", "Failed")]

    async def _admit(self, record: PodRecord, observed: PodInfo | None, plog: Any) -> None:
        """Kubernetes' kubelet admission of a new pod: it must fit beside the admitted ones
        (cpu, memory, ephemeral-storage, extended resources), else it is Failed with reason
        ``OutOf<resource>``, "Pod was rejected: …", and a Warning event."""
        record.admitted = True
        pod, status = record.pod, record.pod.status
        if record.static or record.terminal is not None or observed is not None:
            return  # a static pod, or one already running here (a restarted kubelet)
        if status is not None and status.phase == "Failed" and status.reason:
            record.terminal = (status.reason, status.message or "")  # rejected before
            return
        short = admit.shortage(pod, self._active_others(record), self._allocatable())
        if short is None:
            return
        record.terminal = (short.reason, f"Pod was rejected: {short.message}")
        plog.warning("pod_rejected", reason=short.reason, why=short.message)
        await self.events.record(pod.to_wire(), reason=short.reason, type="Warning",
                                 message=short.message)

    async def _resize(self, record: PodRecord, observed: PodInfo | None, plog: Any) -> None:
        """Allocate a resize that fits, then actuate it on the running containers."""
        pod, allocated = record.pod, self._allocated(record)
        want = resize.pod_wanted(pod)
        if want != allocated:
            why = resize.infeasible(pod, self._allocatable())
            short = None if why else admit.shortage(pod, self._active_others(record),
                                                    self._allocatable())
            pending = ("Infeasible", why) if why else ("Deferred", short.message) if short \
                else None
            if pending != record.resize_pending and pending is not None:
                plog.info("resize_pending", reason=pending[0], why=pending[1])
            record.resize_pending = pending
            if pending is None:
                record.allocated = allocated = want
                plog.info("resize_allocated", resources=want)
        else:
            record.resize_pending = None
        record.resize_error = None
        running = self._running(pod, observed)
        record.updated = {k: v for k, v in record.updated.items() if k in running.values()}
        for container in pod.spec.containers:
            if container.name not in running:
                continue
            container_id = running[container.name]
            actual = self._actual(record, observed, container.name)
            target = allocated[container.name]
            if actual is None or not resize.changed(actual, target):
                continue
            await self._actuate(record, container, container_id, target, actual, plog)

    @staticmethod
    def _running(pod: Pod, observed: PodInfo | None) -> dict[str, str]:
        """Container name -> id of its running attempt."""
        found = {}
        for container in pod.spec.containers:
            tries = attempts(observed, container.name)
            if tries and tries[0].state == "running":
                found[container.name] = tries[0].id
        return found

    @staticmethod
    def _actual(record: PodRecord, observed: PodInfo | None,
                name: str) -> resize.Resources | None:
        """What the running attempt of ``name`` has: as created, or as updated since."""
        tries = attempts(observed, name)
        if not tries or tries[0].state != "running":
            return None
        return record.updated.get(tries[0].id) or resize.from_label(tries[0].resources)

    def _resize_status(self, record: PodRecord, status: PodStatus,
                       observed: PodInfo | None) -> None:
        """Each container's resources and allocatedResources, and the resize conditions."""
        allocated = self._allocated(record)
        in_progress = False
        for st in status.container_statuses or []:
            if st.name not in allocated:
                continue
            st.allocated_resources = dict(allocated[st.name]["requests"]) or None
            actual = self._actual(record, observed, st.name)
            if actual is not None:
                st.resources = resize.status_resources(actual)
                in_progress = in_progress or bool(resize.changed(actual, allocated[st.name]))
        previous = {c.type: c for c in (record.last_status.conditions or [])} \
            if record.last_status else {}
        extra = resize.conditions(record.resize_pending, in_progress, record.resize_error,
                                  previous, now_rfc3339())
        if extra:
            status.conditions = [*(status.conditions or []), *extra]

    async def _actuate(self, record: PodRecord, container: Container, container_id: str,
                       target: resize.Resources, actual: resize.Resources, plog: Any) -> None:
        pod = record.pod
        if resize.needs_restart(container, resize.changed(actual, target)):
            self._stop(pod, container.name, container_id,
                       grace=pod.spec.termination_grace_period_seconds,
                       message=f"Container {container.name} resize requires restart")
            return
        error = await self.threads.call(self.runtime.update_container, container_id,
                                        target["limits"])
        if error is not None:
            record.resize_error = error
            plog.warning("resize_failed", container=container.name, error=error)
            return
        record.updated[container_id] = target
        plog.info("container_resized", container=container.name, resources=target)

    async def _post_start(self, record: PodRecord, spec: Container, container_id: str, *,
                          pod_id: str | None, plog: Any) -> None:
        """Kubernetes' postStart: run right after the start; its failure kills the container."""
        pod, hook = record.pod, spec.lifecycle.post_start  # type: ignore[union-attr]
        ip = self.host_ip if pod.spec.host_network else \
            await self.threads.call(self.runtime.pod_ip, pod_id) if pod_id else None
        target = Target(container_id=container_id, pod_ip=ip,
                        ports=named_ports(spec))
        failure = await run_hook(hook, pod, spec, target, exec_fn=self._exec,  # type: ignore[arg-type]
                                 timeout=None)
        if failure is None:
            return
        plog.warning("post_start_hook_failed", container=spec.name)
        record.reasons[spec.name] = ("PostStartHookError", failure)
        await self._warning(pod, "FailedPostStartHook", failure)
        self._stop(pod, spec.name, container_id,
                   grace=pod.spec.termination_grace_period_seconds, message="FailedPostStartHook")

    async def _crash_loop_events(self, record: PodRecord, observed: PodInfo | None,
                                 plan: Plan) -> None:
        """One BackOff event per exited attempt, not one per relist tick."""
        pod = record.pod
        for name, (reason, _message) in plan.waiting.items():
            tries = attempts(observed, name)
            if reason != "CrashLoopBackOff" or not tries:
                continue
            if record.backoff_events.get(name) == tries[0].id:
                continue
            record.backoff_events[name] = tries[0].id
            await self.events.record(
                pod.to_wire(), reason="BackOff", type="Warning",
                message=f"Back-off restarting failed container {name} in pod "
                        f"{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})")

    async def _kill_pod(self, record: PodRecord, plog: Any) -> None:
        pod = record.pod
        uid = pod.metadata.uid or ""
        obj = pod.to_wire()

        def grace() -> int:  # asked again while waiting: a force delete cuts it short
            current = record.pod.metadata.uid == uid
            return grace_seconds(record.pod if current else None,
                                 object_gone=record.deleted or not current)

        async def stopping(info: PodInfo) -> None:
            for container in info.containers:
                if container.state == "running":
                    await self.events.record(obj, reason="Killing",
                                             message=f"Stopping container {container.name}")

        self.probes.forget(uid)
        found = await terminate_pod(uid=uid, runtime=self.runtime, threads=self.threads,
                                    grace=grace, wake=record.wake, on_stopping=stopping,
                                    order=lambda info: stop_order(pod, info),
                                    pre_stop=self._pre_stop_hooks(pod, plog), log=plog)
        self.removed[uid] = asyncio.get_running_loop().time()
        self.observed.pop(uid, None)
        record.fresh = None
        self.backoff.forget(f"{uid}/")
        if self.images.backoff.forget(f"{uid}_"):
            self._pull_backoff_changed()
        if found:
            plog.info("pod_killed")
        if record.pod.metadata.uid != uid:  # a new pod of that name is waiting its turn
            record.wake.set()

    # -- activeDeadlineSeconds -------------------------------------------------------------

    async def _check_deadline(self, record: PodRecord, observed: PodInfo | None, *,
                              now: float) -> None:
        """Kubernetes' activeDeadlineSeconds: counted from the pod's startTime on this node;
        once past, the pod is Failed (DeadlineExceeded) and its containers are stopped.
        The relist wakes every pod each second, so the deadline is seen within one."""
        pod = record.pod
        seconds = pod.spec.active_deadline_seconds
        if record.terminal is None and seconds is not None and record.start_time:
            if parse_rfc3339(record.start_time).timestamp() + seconds > now:
                return
            record.terminal = ("DeadlineExceeded",
                               "Pod was active on the node longer than the specified deadline")
            self.probes.forget(pod.metadata.uid or "")
            await self.events.record(pod.to_wire(), reason="DeadlineExceeded",
                                     message=record.terminal[1])
        if record.terminal is not None:
            evicted = record.terminal[0] == "Evicted"  # Kubernetes evicts with grace 0
            for container in observed.containers if observed else []:
                if container.state == "running":
                    self._stop(pod, container.name, container.id,
                               grace=0 if evicted else pod.spec.termination_grace_period_seconds,
                               message=f"Stopping container {container.name}")

    async def _check_sizes(self, record: PodRecord, observed: PodInfo | None, plog: Any, *,
                           now: float) -> None:
        """Kubernetes' emptyDir sizeLimit and ephemeral-storage limits: every
        SIZE_CHECK_SECONDS the eviction manager measures each limited emptyDir, then the
        pod's and each container's storage; the first over its limit evicts the pod (Failed,
        reason Evicted, an Evicted event, its containers stopped at once)."""
        pod = record.pod
        limited = volumes.limited_empty_dirs(pod)
        if record.terminal is not None or not (limited or storage.limits(pod)) or \
                now < record.sizes_checked + volumes.SIZE_CHECK_SECONDS:
            return
        record.sizes_checked = now
        for volume, limit in limited:
            used = await self.threads.call(volumes.usage_bytes,
                                           self.runtime.empty_dir(pod, volume))
            if used > limit:
                plog.warning("pod_evicted", volume=volume.name, used_bytes=used,
                             limit_bytes=limit)
                size = volume.empty_dir.size_limit if volume.empty_dir else limit
                await self._evict(record, f'Usage of EmptyDir volume "{volume.name}" '
                                          f'exceeds the limit "{size}". ')
                return
        if storage.limits(pod) and (message := await self._storage_eviction(pod, observed)):
            plog.warning("pod_evicted", reason="ephemeral-storage")
            await self._evict(record, message)

    async def _storage_eviction(self, pod: Pod, observed: PodInfo | None) -> str | None:
        latest: dict[str, ContainerInfo] = {}  # each container's current attempt
        for container in observed.containers if observed else []:
            if container.restart_count >= getattr(latest.get(container.name), "restart_count", -1):
                latest[container.name] = container
        used = {name: await self.threads.call(self.runtime.storage_bytes, container.id)
                for name, container in latest.items()}
        on_disk = 0
        for volume in pod.spec.volumes or []:
            if volume.empty_dir is not None and volume.empty_dir.medium != "Memory":
                on_disk += await self.threads.call(volumes.usage_bytes,
                                                   self.runtime.empty_dir(pod, volume))
        return storage.eviction(pod, containers=used, empty_dirs=on_disk)

    async def _evict(self, record: PodRecord, message: str) -> None:
        record.terminal = ("Evicted", message)
        self.probes.forget(record.pod.metadata.uid or "")
        await self._warning(record.pod, "Evicted", message)

    # -- probes, hooks and stopping one container ----------------------------------------

    async def _exec(self, container_id: str, argv: list[str]) -> tuple[int, bytes]:
        return await self.threads.probe(self.runtime.exec_in, container_id, argv)

    async def _warning(self, pod: Pod, reason: str, message: str) -> None:
        await self.events.record(pod.to_wire(), reason=reason, type="Warning", message=message)

    def _probe_changed(self, pod: Pod) -> None:
        record = self.pods.get(pod.key)
        if record is not None and record.pod.metadata.uid == pod.metadata.uid:
            record.wake.set()

    async def _probe_failed(self, pod: Pod, name: str, container_id: str, kind: str,
                            grace: int) -> None:
        restart = is_sidecar(container_spec(pod, name)) or pod.spec.restart_policy != "Never"
        message = f"Container {name} failed {kind} probe"
        self._stop(pod, name, container_id, grace=grace,
                   message=f"{message}, will be restarted" if restart else message)

    def _target(self, pod: Pod, container: Container, container_id: str) -> Target:
        info = self.observed.get(pod.metadata.uid or "")
        record = self.pods.get(pod.key)
        fresh = record.fresh if record is not None else None
        ip = (fresh.ip if fresh else None) or (info.ip if info else None)
        ip = self.host_ip if pod.spec.host_network else ip
        return Target(container_id=container_id, pod_ip=ip,
                      ports=named_ports(container))

    def _pre_stop_hooks(self, pod: Pod, plog: Any) -> Any:
        """The preStop hooks of the given running containers, side by side."""
        async def run(container_ids: list[str], left: float) -> None:
            info = await self.threads.call(self.runtime.get_pod, pod.metadata.uid or "")
            names = {c.id: c.name for c in (info.containers if info else [])}
            await asyncio.gather(*(self._pre_stop(pod, names[cid], cid, left, plog)
                                   for cid in container_ids if cid in names))
        return run

    async def _pre_stop(self, pod: Pod, name: str, container_id: str, left: float,
                        plog: Any) -> None:
        container = container_spec(pod, name)
        hook = container.lifecycle.pre_stop if container.lifecycle else None
        if hook is None:
            return
        failure = await run_hook(hook, pod, container, self._target(pod, container, container_id),
                                 exec_fn=self._exec, timeout=max(left, 0.0))
        if failure is not None:
            plog.warning("pre_stop_hook_failed", container=name)
            await self._warning(pod, "FailedPreStopHook", failure)

    def _stop(self, pod: Pod, name: str, container_id: str, *, grace: int, message: str) -> None:
        """Stop one container in a task of its own: Killing, preStop, SIGTERM, grace, SIGKILL."""
        if container_id in self.stopping:
            return
        self.stopping[container_id] = asyncio.create_task(
            self._stop_container(pod, name, container_id, grace=grace, message=message),
            name=f"stop:{container_id[:12]}")

    async def _stop_container(self, pod: Pod, name: str, container_id: str, *, grace: int,
                              message: str) -> None:
        plog = self.log.bind(namespace=pod.metadata.namespace, name=pod.metadata.name,
                             uid=pod.metadata.uid)
        try:
            await self.events.record(pod.to_wire(), reason="Killing", message=message)
            await stop_container(container_id, runtime=self.runtime, threads=self.threads,
                                 grace=grace, pre_stop=self._pre_stop_hooks(pod, plog), log=plog)
            plog.info("container_stopped", container=name, why=message)
        except Exception:
            plog.exception("container_not_stopped", container=name)
        finally:
            self.stopping.pop(container_id, None)
            record = self.pods.get(pod.key)
            if record is not None and record.pod.metadata.uid == pod.metadata.uid:
                record.acted = asyncio.get_running_loop().time()
                record.wake.set()

    async def _finalize(self, pod: Pod, plog: Any) -> None:
        try:
            await request(self.nc, s.node_api(self.node_name, "finalize"), {
                "namespace": pod.metadata.namespace, "name": pod.metadata.name,
                "uid": pod.metadata.uid})
        except PeapodError as exc:
            plog.info("finalize_failed", error=exc.message)

    async def _report(self, record: PodRecord, observed: PodInfo | None, plan: Plan,
                      plog: Any, *, probes: ProbeView) -> None:
        pod = record.pod
        if record.start_time is None:
            record.start_time = now_rfc3339()
        status = pod_status(pod, observed, waiting={**record.reasons, **plan.waiting},
                            host_ip=self.host_ip, start_time=record.start_time,
                            previous=record.last_status, now=now_rfc3339(), probes=probes,
                            terminal=record.terminal)
        self._resize_status(record, status, observed)
        wire = status.to_wire()
        # a static pod's status goes to its mirror pod, once there is one
        target = self.mirrors.target(pod) if record.static else pod.metadata.uid
        if target is None or (wire == record.reported and target == record.reported_to) \
                or not self.nc.is_connected:  # reported once connected
            return
        record.unsent = Unsent(payload={"namespace": pod.metadata.namespace,
                                        "name": pod.metadata.name, "uid": target,
                                        "status": wire},
                               status=status, pod_uid=pod.metadata.uid or "")
        if record.reporting is None or record.reporting.done():
            record.reporting = asyncio.create_task(self._send_status(record, plog),
                                                   name=f"status:{pod.key}")

    async def _send_status(self, record: PodRecord, plog: Any) -> None:
        """Send the newest unsent status, in a task of its own: a control plane that has
        gone silent (each request times out) never holds up the pod's restarts, probes or
        stops; what changed meanwhile goes next, older versions are skipped."""
        while (unsent := record.unsent) is not None:
            record.unsent = None
            target = unsent.payload["uid"]
            if unsent.payload["status"] == record.reported and target == record.reported_to:
                continue
            try:
                await request(self.nc, s.node_api(self.node_name, "status"), unsent.payload)
            except PeapodError as exc:
                plog.info("status_not_reported", error=exc.message)
                continue  # a newer one, if any; else the next sync tries again
            if record.pod.metadata.uid != unsent.pod_uid:
                continue  # a new incarnation meanwhile: this report was its predecessor's
            if record.last_status is None or record.last_status.phase != unsent.status.phase:
                self.last_known_changed = True
            record.reported, record.last_status = unsent.payload["status"], unsent.status
            record.reported_to = target
            plog.debug("status_reported", phase=unsent.status.phase)


def _quiet(task: asyncio.Task[Any]) -> None:
    """Retrieve a background task's failure, so that asyncio does not log it as lost: whoever
    needs the answer asks podman again."""
    if not task.cancelled():
        task.exception()


def _about(pod: Pod) -> dict[str, Any]:
    """What an event recorder needs of a pod to know which events are about it."""
    meta = pod.metadata
    return {"kind": "Pod", "metadata": {"namespace": meta.namespace, "name": meta.name,
                                        "uid": meta.uid}}


def stop_order(pod: Pod, info: PodInfo) -> list[list[str]]:
    """The running containers in the order Kubernetes stops them: the app (and init)
    containers together, then the sidecars one by one, the last started first."""
    sidecars = [c.name for c in pod.spec.init_containers or [] if is_sidecar(c)]
    running = {c.name: c.id for c in info.containers if c.state == "running"}
    first = [cid for name, cid in running.items() if name not in sidecars]
    return [first, *([running[name]] for name in reversed(sidecars) if name in running)]
