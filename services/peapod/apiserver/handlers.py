"""The API the apiserver answers: one handler per ``peapod.api.v1.<kind>.<verb>``.

Handlers are small: they read, decide through ``admission``, and write with
compare-and-set through ``Store``. Requests on ``peapod.api.v1.node.<node>.…``
come only from that node's kubelet (the NATS permissions guarantee the
sender), and every one is checked against the pod's ``spec.nodeName`` — the
node restriction that keeps a compromised node away from other nodes' pods.

Deletion follows Kubernetes: a pod not yet on a node is removed at once; a
bound pod gets ``deletionTimestamp`` and a grace period, its kubelet stops
the containers and then ``finalize``s it, which removes it from the store.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from peapod.api import Condition, Node, Pod, PodStatus, now_rfc3339
from peapod.api.manifest import needs_generated_name
from peapod.api.podsecurity import DEFAULT_POLICY, Policy, forbidden_reason, policy_for
from peapod.api.selectors import parse_field_selector, parse_label_selector
from peapod.api.static import is_mirror, mirror_problem
from peapod.api.validation import pydantic_problems
from peapod.apiserver import admission
from peapod.apiserver.configs import ConfigObjects
from peapod.apiserver.events import EventsApi
from peapod.apiserver.heartbeat import with_heartbeat
from peapod.apiserver.namespaces import Namespaces
from peapod.apiserver.paging import paged
from peapod.apiserver.priorityclasses import PriorityClasses
from peapod.apiserver.store import Store
from peapod.apiserver.volumes import NodeVolumes, volume_apis
from peapod.apiserver.workloads import propagation_finalizer, workload_apis
from peapod.bus import subjects as s
from peapod.bus.auth import node_name_problem
from peapod.bus.leases import Leases
from peapod.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound, invalid

log = structlog.get_logger("apiserver")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]
_STATUS_RETRIES = 5


def _text(payload: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    value = payload.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"request field {field!r} must be a non-empty string")
    return value


def _pod_key(namespace: str, name: str) -> tuple[str, str]:
    return s.kv_key("pods", namespace, name), f'pods "{name}"'


class Api:
    def __init__(self, store: Store, *, leases: Leases | None = None,
                 clock: Callable[[], float] = time.time,
                 pod_security: Policy = DEFAULT_POLICY) -> None:
        self.store = store
        self.pod_security = pod_security  # the level of a namespace without the label
        self.leases = leases  # None: serve Nodes exactly as stored
        self.clock = clock
        self.namespaces = Namespaces(store, remove_pod=self.remove_pod)
        self.workloads = {**workload_apis(store, self.namespaces),
                          **volume_apis(store, self.namespaces)}
        self.namespaces.removers.update({r: api.remove for r, api in self.workloads.items()
                                         if api.namespaced})
        self.configs = ConfigObjects(store, self.namespaces)
        self.namespaces.removers.update(self.configs.removers())
        self.priority_classes = PriorityClasses(store)

    def _shown_node(self, node: dict[str, Any]) -> dict[str, Any]:
        if self.leases is None:
            return node
        name = node["metadata"]["name"]
        return with_heartbeat(node, self.leases.renewed.get(name), self.clock())

    def routes(self) -> dict[str, Route]:
        """Every subject the apiserver answers; each list answers in pages if asked to."""
        routes = self._routes()
        return {subject: paged(fn) if subject.endswith(".list") else fn
                for subject, fn in routes.items()}

    def _routes(self) -> dict[str, Route]:
        return {
            s.api("pods", "create"): self.create_pod,
            s.api("pods", "apply"): self.apply_pod,
            s.api("pods", "get"): self.get_pod,
            s.api("pods", "list"): self.list_pods,
            s.api("pods", "delete"): self.delete_pod,
            s.api("pods", "update"): self.update_pod,
            s.api("pods", "resize"): self.resize_pod,
            s.api("pods", "bind"): self.bind_pod,
            s.api("pods", "unschedulable"): self.unschedulable_pod,
            s.api("nodes", "get"): self.get_node,
            s.api("nodes", "list"): self.list_nodes,
            s.api("nodes", "delete"): self.delete_node,
            s.api("nodes", "update"): self.update_node,
            f"{s.API_PREFIX}.node.*.register": self.register_node,
            f"{s.API_PREFIX}.node.*.status": self.update_pod_status,
            f"{s.API_PREFIX}.node.*.finalize": self.finalize_pod,
            f"{s.API_PREFIX}.node.*.mirror.create": self.create_mirror_pod,
            f"{s.API_PREFIX}.node.*.mirror.delete": self.delete_mirror_pod,
            **EventsApi(self.store).routes(),
            **self.namespaces.routes(),
            **{route: fn for api in self.workloads.values() for route, fn in api.routes().items()},
            **self.configs.routes(),
            **NodeVolumes(self.store).routes(),
            **self.priority_classes.routes(),
        }

    # -- pods -------------------------------------------------------------------------

    async def create_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        doc = self._object(payload)
        generated = needs_generated_name(doc)
        for _ in range(admission.GENERATE_NAME_ATTEMPTS - 1 if generated else 0):
            try:
                return await self._create_pod(doc, payload.get("namespace"))
            except AlreadyExists:
                continue  # a generated name that is taken: draw another
        try:
            return await self._create_pod(doc, payload.get("namespace"))
        except AlreadyExists as exc:
            if not generated:
                raise
            raise AlreadyExists(f"{exc.message}, the server was not able to generate a unique "
                                "name for the object") from None

    async def _create_pod(self, doc: dict[str, Any], namespace: str | None) -> Any:
        pod = admission.admit_new_pod(doc, namespace=namespace)
        if pod.spec.node_name and (problem := node_name_problem(pod.spec.node_name)):
            raise invalid("Pod", pod.metadata.name, [f"spec.nodeName: {problem}"])
        namespace = pod.metadata.namespace or "default"
        key, what = _pod_key(namespace, pod.metadata.name or "")
        ns = await self.namespaces.admit_into(namespace, what)
        refusal = forbidden_reason(pod, policy_for(ns.metadata.labels, self.pod_security))
        if refusal:
            raise Forbidden(refusal)
        await self.priority_classes.admit_pod(pod)
        stored = await self.namespaces.create_in(namespace, key, pod.to_wire(), what=what)
        log.info("pod_created", pod=pod.key, uid=pod.metadata.uid, revision=stored.revision)
        return stored.value

    async def apply_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        doc = self._object(payload)
        applied = admission.parse_applied(doc, Pod)
        namespace = applied.metadata.namespace or payload.get("namespace") or "default"
        key, what = _pod_key(namespace, applied.metadata.name or "")
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return {"object": await self.create_pod(payload, msg), "action": "created"}
        stored = Pod.model_validate(current.value)
        expected = _expected_revision(applied, current.revision)
        merged, action = admission.merge_applied_pod(stored, applied)
        if action == "unchanged":
            return {"object": current.value, "action": action}
        result = await self.store.update(key, merged.to_wire(), expected=expected, what=what)
        log.info("pod_configured", pod=stored.key, uid=stored.metadata.uid)
        return {"object": result.value, "action": action}

    async def get_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = _text(payload, "namespace") or "default"
        key, what = _pod_key(namespace, _text(payload, "name") or "")
        return (await self.store.get(key, what=what)).value

    async def list_pods(self, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = _text(payload, "namespace", required=False)
        labels = parse_label_selector(payload.get("labelSelector"))
        fields = parse_field_selector(payload.get("fieldSelector"))
        items = [item.value for item in await self.store.list(s.kv_prefix("pods", namespace))]
        return [obj for obj in items
                if labels(obj["metadata"].get("labels") or {}) and fields(obj)]

    async def delete_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = _text(payload, "namespace") or "default"
        name = _text(payload, "name") or ""
        grace = payload.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            raise Invalid("gracePeriodSeconds must be a non-negative integer")
        if propagation_finalizer(payload):
            raise Invalid(f'pods "{name}": propagationPolicy {payload["propagationPolicy"]}: '
                          "peapod deletes pods in the background only (--cascade=background)")
        return await self.remove_pod(namespace, name, grace=grace)

    async def update_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        """Replace a pod's labels, annotations and owner references at its resourceVersion."""
        doc = self._object(payload)
        incoming = admission.parse_applied(doc, Pod)
        namespace = incoming.metadata.namespace or payload.get("namespace") or "default"
        key, what = _pod_key(namespace, incoming.metadata.name or "")
        current = await self.store.get(key, what=what)
        if not incoming.metadata.resource_version:
            raise Invalid(f"{what}: metadata.resourceVersion: Invalid value: 0x0: must be "
                          "specified for an update")
        expected = _expected_revision(incoming, current.revision)
        merged = admission.merge_updated_pod(Pod.model_validate(current.value), incoming)
        if admission.pod_gone(merged):  # its last finalizer removed: nothing holds it now
            await self.store.delete(key, merged.to_wire(), expected=expected, what=what)
            log.info("pod_deleted", pod=merged.key, uid=merged.metadata.uid,
                     reason="finalizers_done")
            self.namespaces.poke(namespace)
            return merged.to_wire()
        result = await self.store.update(key, merged.to_wire(), expected=expected, what=what)
        log.info("pod_updated", pod=merged.key, uid=merged.metadata.uid)
        return result.value

    async def resize_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        """The ``pods/resize`` subresource: a patch of the containers' cpu and memory."""
        namespace = _text(payload, "namespace") or "default"
        key, what = _pod_key(namespace, _text(payload, "name") or "")
        current = await self.store.get(key, what=what)
        resized = admission.resize_pod(Pod.model_validate(current.value), payload.get("patch"))
        if resized is None:
            return current.value
        result = await self.store.update(key, resized.to_wire(), expected=current.revision,
                                         what=what)
        log.info("pod_resized", pod=resized.key, uid=resized.metadata.uid)
        return result.value

    async def remove_pod(self, namespace: str, name: str, *, grace: int | None = None
                         ) -> dict[str, Any]:
        """Delete a pod as Kubernetes does: at once if unbound (or grace 0), else gracefully;
        a pod that holds a finalizer stays (``deletionTimestamp``, grace 0) until it goes."""
        key, what = _pod_key(namespace, name)
        # as Kubernetes' store: a delete without preconditions retries a concurrent write
        # (the scheduler's Unschedulable condition, a kubelet's status) instead of failing
        for _ in range(_STATUS_RETRIES):
            try:
                return await self._remove_pod(namespace, key, what, grace=grace)
            except Conflict:
                continue
        raise Conflict(f"{what}: too many concurrent updates")

    async def _remove_pod(self, namespace: str, key: str, what: str, *,
                          grace: int | None) -> dict[str, Any]:
        current = await self.store.get(key, what=what)
        pod = Pod.model_validate(current.value)
        at_once = not pod.spec.node_name or grace == 0
        if at_once and not pod.metadata.finalizers:
            await self.store.delete(key, current.value, expected=current.revision, what=what)
            log.info("pod_deleted", pod=pod.key, uid=pod.metadata.uid)
            self.namespaces.poke(namespace)
            return {"object": current.value, "finished": True}
        grace = 0 if at_once else grace
        grace = pod.spec.termination_grace_period_seconds if grace is None else grace
        meta = pod.metadata
        if meta.deletion_timestamp and (meta.deletion_grace_period_seconds or 0) <= grace:
            return {"object": current.value, "finished": False}
        meta.deletion_timestamp = meta.deletion_timestamp or now_rfc3339()
        meta.deletion_grace_period_seconds = grace
        result = await self.store.update(key, pod.to_wire(), expected=current.revision, what=what)
        log.info("pod_terminating", pod=pod.key, uid=meta.uid, grace_seconds=grace)
        return {"object": result.value, "finished": False}

    async def bind_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = _text(payload, "namespace") or "default"
        key, what = _pod_key(namespace, _text(payload, "name") or "")
        node_name = _text(payload, "nodeName") or ""
        if problem := node_name_problem(node_name):
            raise invalid("Binding", _text(payload, "name"), [f"target.name: {problem}"])
        current = await self.store.get(key, what=what)
        pod = Pod.model_validate(current.value)
        expected_uid = payload.get("uid")
        if expected_uid and expected_uid != pod.metadata.uid:
            raise Conflict(f"{what}: uid {expected_uid} does not match (the pod was recreated)")
        if pod.spec.node_name:
            raise Conflict(f'pod {pod.key} is already assigned to node "{pod.spec.node_name}"')
        if pod.metadata.deletion_timestamp:
            raise Conflict(f"pod {pod.key} is being deleted")
        await self.store.get(s.kv_key("nodes", None, node_name), what=f'nodes "{node_name}"')
        pod.spec.node_name = node_name
        # as Kubernetes' binding: the scheduler's verdict is now PodScheduled=True
        admission.set_pod_condition(pod, Condition(type="PodScheduled", status="True"))
        result = await self.store.update(key, pod.to_wire(), expected=current.revision, what=what)
        log.info("pod_bound", pod=pod.key, uid=pod.metadata.uid, node=node_name)
        return result.value

    async def unschedulable_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        """The scheduler's verdict on a pod it could not place, as Kubernetes' scheduler writes
        it: ``PodScheduled=False``, reason ``Unschedulable``, the FailedScheduling message, and
        ``status.nominatedNodeName`` when it preempted pods for it."""
        namespace = _text(payload, "namespace") or "default"
        key, what = _pod_key(namespace, _text(payload, "name") or "")
        message = _text(payload, "message") or ""
        nominated = _text(payload, "nominatedNodeName", required=False)
        if nominated and (problem := node_name_problem(nominated)):
            raise Invalid(f"status.nominatedNodeName: {problem}")
        for _ in range(_STATUS_RETRIES):
            current = await self.store.get(key, what=what)
            pod = Pod.model_validate(current.value)
            if payload.get("uid") and payload.get("uid") != pod.metadata.uid:
                raise Conflict(f"{what}: uid {payload.get('uid')} does not match (the pod was "
                               "recreated)")
            if pod.spec.node_name:
                raise Conflict(f'pod {pod.key} is already assigned to node "{pod.spec.node_name}"')
            admission.set_pod_condition(pod, Condition(
                type="PodScheduled", status="False", reason="Unschedulable", message=message))
            if nominated and pod.status is not None:  # the node a preemption frees for it
                pod.status.nominated_node_name = nominated
            try:
                result = await self.store.update(key, pod.to_wire(), expected=current.revision,
                                                 what=what)
            except Conflict:
                continue
            return result.value
        raise Conflict(f"pod {payload.get('name')}: too many concurrent updates")

    # -- nodes ------------------------------------------------------------------------

    async def get_node(self, payload: dict[str, Any], msg: Msg) -> Any:
        name = _text(payload, "name") or ""
        stored = await self.store.get(s.kv_key("nodes", None, name), what=f'nodes "{name}"')
        return self._shown_node(stored.value)

    async def list_nodes(self, payload: dict[str, Any], msg: Msg) -> Any:
        labels = parse_label_selector(payload.get("labelSelector"))
        items = [item.value for item in await self.store.list("nodes.")]
        return [self._shown_node(obj) for obj in items if labels(obj["metadata"].get("labels") or {})]

    async def delete_node(self, payload: dict[str, Any], msg: Msg) -> Any:
        name = _text(payload, "name") or ""
        key, what = s.kv_key("nodes", None, name), f'nodes "{name}"'
        current = await self.store.get(key, what=what)
        await self.store.delete(key, current.value, expected=current.revision, what=what)
        return {"object": current.value, "finished": True}

    async def update_node(self, payload: dict[str, Any], msg: Msg) -> Any:
        """Labels, annotations and spec.unschedulable (cordon) at the node's resourceVersion."""
        incoming = admission.parse_applied(self._object(payload), Node)
        name = incoming.metadata.name or ""
        key, what = s.kv_key("nodes", None, name), f'nodes "{name}"'
        current = await self.store.get(key, what=what)
        wanted = incoming.metadata.resource_version
        if not wanted or not wanted.isdigit():
            raise Invalid(f"{what}: metadata.resourceVersion: Invalid value: {wanted!r}: must be "
                          "specified for an update")
        if int(wanted) != current.revision:
            raise Conflict(f"Operation cannot be fulfilled on {what}: the object has been "
                           "modified; please apply your changes to the latest version and try again")
        node = admission.merge_updated_node(Node.model_validate(current.value), incoming)
        result = await self.store.update(key, node.to_wire(), expected=current.revision, what=what)
        log.info("node_updated", node=name, unschedulable=bool(node.spec.unschedulable))
        return self._shown_node(result.value)

    # -- the kubelet's own requests -----------------------------------------------------

    async def register_node(self, payload: dict[str, Any], msg: Msg) -> Any:
        node_name = _node_of(msg.subject)
        if problem := node_name_problem(node_name):
            raise invalid("Node", node_name, [f"metadata.name: {problem}"])
        doc = self._object(payload)
        if (doc.get("metadata") or {}).get("name") != node_name:
            raise Forbidden(f'node "{node_name}" may only register itself')
        key, what = s.kv_key("nodes", None, node_name), f'nodes "{node_name}"'
        for _ in range(_STATUS_RETRIES):
            try:
                current = await self.store.get(key, what=what)
            except NotFound:
                node = admission.admit_node(doc, existing=None)
                try:
                    return (await self.store.create(key, node.to_wire(), what=what)).value
                except Conflict:
                    continue
            node = admission.admit_node(doc, existing=Node.model_validate(current.value))
            try:
                return (await self.store.update(key, node.to_wire(), expected=current.revision,
                                                what=what)).value
            except Conflict:
                continue
        raise Conflict(f"{what}: too many concurrent updates")

    async def update_pod_status(self, payload: dict[str, Any], msg: Msg) -> Any:
        node_name = _node_of(msg.subject)
        try:
            status = PodStatus.model_validate(payload.get("status") or {})
        except ValidationError as exc:
            raise Invalid("status is invalid: " + "; ".join(pydantic_problems(exc))) from None
        for _ in range(_STATUS_RETRIES):
            current, pod = await self._node_pod(payload, node_name)
            pod.status = status
            key, what = _pod_key(pod.metadata.namespace or "default", pod.metadata.name or "")
            try:
                result = await self.store.update(key, pod.to_wire(), expected=current, what=what)
            except Conflict:
                continue
            return {"resourceVersion": str(result.revision)}
        raise Conflict(f"pod {payload.get('name')}: too many concurrent updates")

    async def finalize_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        node_name = _node_of(msg.subject)
        for _ in range(_STATUS_RETRIES):
            try:
                revision, pod = await self._node_pod(payload, node_name)
            except NotFound:
                return {"finished": True}
            if not pod.metadata.deletion_timestamp:
                raise Conflict(f"pod {pod.key} is not being deleted")
            key, what = _pod_key(pod.metadata.namespace or "default", pod.metadata.name or "")
            try:
                if pod.metadata.finalizers:  # its containers are done; a finalizer holds it
                    return await self._hold_finalized(key, what, pod, revision)
                await self.store.delete(key, pod.to_wire(), expected=revision, what=what)
            except Conflict:
                continue
            log.info("pod_deleted", pod=pod.key, uid=pod.metadata.uid, node=node_name)
            self.namespaces.poke(pod.metadata.namespace or "default")
            return {"finished": True}
        raise Conflict(f"pod {payload.get('name')}: too many concurrent updates")

    async def _hold_finalized(self, key: str, what: str, pod: Pod, revision: int
                              ) -> dict[str, Any]:
        """A finalized pod that a finalizer holds: grace 0 says its containers are done, so
        the update that removes its last finalizer removes it."""
        if pod.metadata.deletion_grace_period_seconds != 0:
            pod.metadata.deletion_grace_period_seconds = 0
            await self.store.update(key, pod.to_wire(), expected=revision, what=what)
            log.info("pod_finalized", pod=pod.key, uid=pod.metadata.uid,
                     finalizers=pod.metadata.finalizers)
        return {"finished": False}

    async def create_mirror_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        """A kubelet's mirror pod of one of its static pods (Kubernetes' NodeRestriction: a
        node creates mirror pods only, bound to itself, owned by its Node, referencing no
        ConfigMap or Secret); then the admission every pod goes through."""
        node_name = _node_of(msg.subject)
        doc = self._object(payload)
        pod = admission.admit_new_pod(doc, namespace=payload.get("namespace"))
        try:
            node = await self.store.get(s.kv_key("nodes", None, node_name),
                                        what=f'nodes "{node_name}"')
            node_uid = (node.value.get("metadata") or {}).get("uid")
        except NotFound:
            node_uid = None
        if problem := mirror_problem(pod, node_name=node_name, node_uid=node_uid):
            raise Forbidden(f'pods "{pod.metadata.name}" is forbidden: {problem}')
        return await self._create_pod(doc, payload.get("namespace"))

    async def delete_mirror_pod(self, payload: dict[str, Any], msg: Msg) -> Any:
        """A kubelet removes a mirror pod of its own at once (its static pod is gone or
        changed, or people deleted the mirror pod): never another pod."""
        node_name = _node_of(msg.subject)
        revision, pod = await self._node_pod(payload, node_name)
        if not is_mirror(pod):
            raise Forbidden(f'pods "{pod.metadata.name}" is forbidden: node "{node_name}" can '
                            "only delete mirror pods")
        key, what = _pod_key(pod.metadata.namespace or "default", pod.metadata.name or "")
        await self.store.delete(key, pod.to_wire(), expected=revision, what=what)
        log.info("pod_deleted", pod=pod.key, uid=pod.metadata.uid, node=node_name, mirror=True)
        self.namespaces.poke(pod.metadata.namespace or "default")
        return {"finished": True}

    async def _node_pod(self, payload: dict[str, Any], node_name: str) -> tuple[int, Pod]:
        namespace = _text(payload, "namespace") or "default"
        key, what = _pod_key(namespace, _text(payload, "name") or "")
        current = await self.store.get(key, what=what)
        pod = Pod.model_validate(current.value)
        if pod.spec.node_name != node_name:
            raise Forbidden(f'node "{node_name}" cannot modify pod {pod.key}: '
                            "it is not bound to that node")
        uid = payload.get("uid")
        if uid and uid != pod.metadata.uid:
            raise NotFound(f"{what} with uid {uid} not found")
        return current.revision, pod

    @staticmethod
    def _object(payload: dict[str, Any]) -> dict[str, Any]:
        obj = payload.get("object")
        if not isinstance(obj, dict):
            raise Invalid("request field 'object' must be a JSON object")
        return obj


def _node_of(subject: str) -> str:
    return s.node_of_api(subject)


def _expected_revision(applied: Pod, latest: int) -> int:
    """A manifest that names a resourceVersion is applied only on top of that version."""
    wanted = applied.metadata.resource_version
    if not wanted:
        return latest
    if not wanted.isdigit():
        raise Invalid(f"metadata.resourceVersion: invalid value {wanted!r}: must be a number")
    if int(wanted) != latest:
        raise Conflict(f'Operation cannot be fulfilled on pods "{applied.metadata.name}": the object '
                       "has been modified; please apply your changes to the latest version and try again")
    return latest
