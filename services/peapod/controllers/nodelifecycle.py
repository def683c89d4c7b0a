"""Node lifecycle: a node whose heartbeat stopped is tainted unreachable, then its pods evicted.

Kubernetes' node lifecycle controller and taint manager, in peapod's terms:

* a node whose lease (``bus/leases.py``) is older than
  ``LEASE_DURATION_SECONDS`` reads ``Ready=Unknown`` (the apiserver shows
  that already) and gets the taint ``node.kubernetes.io/unreachable:NoExecute``
  with ``timeAdded``; the scheduler places nothing there;
* a pod of the node is deleted once the taint is as old as the pod
  tolerates it, so its owner (ReplicaSet, Deployment, Job) replaces it on
  another node, with Kubernetes' taint manager rules: the smallest
  ``tolerationSeconds`` of the pod's tolerations that match the taint (0 or
  less: at once); matching tolerations without seconds: never; no matching
  toleration: ``eviction_seconds`` (300 s by default, Kubernetes'
  DefaultTolerationSeconds, which its admission adds to every pod as a
  toleration; peapod applies it here instead of writing it into the pod).
  DaemonSet pods stay, as they tolerate the taint in Kubernetes. Deleting a pod of a silent node
  leaves it ``Terminating`` until its kubelet comes back and stops its
  containers, or the node is deleted, as in Kubernetes; a terminating pod
  no longer counts for its owner, so no replica is lost meanwhile and none
  is doubled once the node returns;
* a node that heartbeats again loses the taint at once;
* every other ``NoExecute`` taint (``peapod taint nodes n1 k=v:NoExecute``) evicts
  the node's pods as Kubernetes' taint manager does: a pod that does not
  tolerate it at once, one that tolerates it with ``tolerationSeconds`` that
  many seconds after the taint's ``timeAdded`` (the apiserver stamps it), one
  that tolerates it without seconds never. The 300 s default and the
  DaemonSet exemption hold only for ``unreachable`` and ``not-ready``, the
  taints Kubernetes' admission and DaemonSet controller add tolerations for.

Time: leases carry the server's stamp, compared with the injected clock's
``now()``; the next check of a node is a ``RetryAfter`` timer on its key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from peapod.api import Node, Pod, parse_rfc3339
from peapod.api.node import Taint
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.leases import Leases
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.queueing import QueuedController
from peapod.errors import Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.nodelifecycle")

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
# the taints every pod tolerates for DefaultTolerationSeconds (Kubernetes' admission plugin
# adds those tolerations) and DaemonSet pods for ever (their controller adds them)
DEFAULT_TOLERATED = frozenset({UNREACHABLE, NOT_READY})
DEFAULT_EVICTION_SECONDS = 300.0  # Kubernetes' DefaultTolerationSeconds
RETRY_SECONDS = 1.0


def unreachable_taint(node: Node) -> Taint | None:
    return next((t for t in node.spec.taints or [] if t.key == UNREACHABLE), None)


def eviction_delay(pod: Pod, taint: Taint, default: float) -> float | None:
    """Seconds after the taint's ``timeAdded`` that the pod goes; None: it tolerates it for ever
    (Kubernetes' ``getMinTolerationTime`` over the tolerations that match the taint)."""
    matching = [t for t in pod.spec.tolerations or [] if t.tolerates(taint)]
    if not matching:
        if taint.key not in DEFAULT_TOLERATED:
            return 0.0
        return None if is_daemon(pod) else default
    seconds = [t.toleration_seconds for t in matching if t.toleration_seconds is not None]
    return max(0.0, float(min(seconds))) if seconds else None


def eviction_time(pod: Pod, taints: list[Taint], *, default: float, now: float) -> float | None:
    """When (clock seconds) the first of the node's NoExecute taints evicts the pod; None:
    it tolerates them all for ever."""
    times = []
    for taint in taints:
        delay = eviction_delay(pod, taint, default)
        if delay is not None:
            since = parse_rfc3339(taint.time_added).timestamp() if taint.time_added else now
            times.append(since + delay)
    return min(times) if times else None


def is_daemon(pod: Pod) -> bool:
    ref = pod.metadata.controller_ref()
    return ref is not None and ref.kind == "DaemonSet"


def evictable(pod: Pod, node_name: str) -> bool:
    """A pod of the node, not already going."""
    return pod.spec.node_name == node_name and pod.metadata.deletion_timestamp is None


class NodeLifecycleController(QueuedController):
    name = "nodelifecycle"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 leases: Leases, clock: Clock = SYSTEM_CLOCK,
                 eviction_seconds: float = DEFAULT_EVICTION_SECONDS) -> None:
        super().__init__(cache=cache, clock=clock)
        self.api = api
        self.events = events
        self.leases = leases
        self.eviction_seconds = eviction_seconds
        # node -> when this controller first saw it: a node whose lease it has never seen
        # (just registered, or the lease watch not caught up) is given the lease's duration
        # from then, as Kubernetes' probeTimestamp does, rather than called unreachable at
        # once; -inf once its lease was seen (a lease that then goes has expired)
        self.first_seen: dict[str, float] = {}
        cache.on_event(self._on_event)

    def initial_keys(self) -> list[str]:
        return [s.kv_key("nodes", None, n.metadata.name or "") for n in self.cache.of_kind("nodes")]

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, Node):
            self.add(event.key)
        elif (isinstance(obj, Pod) and obj.spec.node_name
              and not (isinstance(previous, Pod) and previous.spec.node_name)):
            # a pod newly bound (or created with nodeName) on a node with NoExecute taints
            node_key = s.kv_key("nodes", None, obj.spec.node_name)
            node: Node | None = self.cache.get(node_key)
            if node is not None and any(t.effect == "NoExecute" for t in node.spec.taints or []):
                self.add(node_key)

    def lease_changed(self) -> None:
        """A node came (back) to life, or its lease was deleted: look at every node."""
        for key in self.initial_keys():
            self.add(key)

    async def reconcile(self, key: str) -> Outcome:
        node: Node | None = self.cache.get(key)
        if node is None:
            self.first_seen.pop(s.parse_kv_key(key)[2], None)
            return Done()
        name = node.metadata.name or ""
        now = self.clock.now()
        renewed = self.leases.renewed.get(name)
        if renewed is not None:  # its lease was seen: once gone (expired), it is unreachable
            self.first_seen[name] = float("-inf")
        heard = renewed if renewed is not None else self.first_seen.setdefault(name, now)
        taint = unreachable_taint(node)
        alive = now - heard < s.LEASE_DURATION_SECONDS
        try:
            if alive and taint is not None and renewed is not None:  # heard from, not waited for
                await self._set_taint(node, None)
                return Done()  # the node's change brings its key back
            if not alive and taint is None:
                added = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                await self._set_taint(node, Taint(key=UNREACHABLE, effect="NoExecute",
                                                  time_added=added))
                return Done()
        except (Conflict, NotFound):
            return RetryAfter(RETRY_SECONDS)
        due = await self._evict(node, now=now)
        if alive:  # look again when the lease (or the grace of a node not heard yet) runs out
            lease_due = heard + s.LEASE_DURATION_SECONDS - now + 0.5
            return RetryAfter(min(lease_due, due + 0.1) if due is not None else lease_due)
        # the next pod's turn, or a look for pods that show up later
        return RetryAfter(due + 0.1 if due is not None else self.eviction_seconds)

    async def _set_taint(self, node: Node, taint: Taint | None) -> None:
        updated = node.model_copy(deep=True)
        others = [t for t in node.spec.taints or [] if t.key != UNREACHABLE]
        updated.spec.taints = [*others, *([taint] if taint else [])] or None
        await self.api.update_node(updated.to_wire())
        nlog = log.bind(node=node.metadata.name, uid=node.metadata.uid)
        if taint is None:
            nlog.info("node_reachable_again")
            return
        nlog.info("node_unreachable", evict_after=self.eviction_seconds)
        await self.events.record(node.to_wire(), reason="NodeNotReady", type="Warning",
                                 message=f"Node {node.metadata.name} status is now: NodeNotReady")

    async def _evict(self, node: Node, *, now: float) -> float | None:
        """Delete the node's pods whose toleration of its NoExecute taints ran out; the
        seconds until the next one's does (None: no pod left waiting)."""
        name = node.metadata.name or ""
        taints = [t for t in node.spec.taints or [] if t.effect == "NoExecute"]
        if not taints:
            return None
        next_due: float | None = None
        for pod in [p for p in self.cache.of_kind("pods") if evictable(p, name)]:
            at = eviction_time(pod, taints, default=self.eviction_seconds, now=now)
            if at is None:
                continue
            if at > now:
                next_due = min(at - now, next_due if next_due is not None else at - now)
                continue
            try:
                await self.api.delete("pods", pod.metadata.namespace or "default",
                                      pod.metadata.name or "")
            except PeapodError as exc:
                log.warning("eviction_failed", pod=pod.key, node=name, error=exc.message)
                continue
            log.info("pod_evicted", pod=pod.key, uid=pod.metadata.uid, node=name)
            await self.events.record(pod.to_wire(), reason="TaintManagerEviction",
                                     message=f"Marking for deletion Pod {pod.key}")
        return next_due


