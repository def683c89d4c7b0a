"""Namespaces: their API, admission into them, and their deletion, as Kubernetes does it.

Kubernetes splits this three ways, and peapod keeps the same rules in one
place because it has no controller-manager yet:

* the **API** (``peapod.api.v1.namespaces.create|apply|get|list|delete``):
  a Namespace is cluster-scoped and stored under ``namespaces.<name>``;
* **admission** (Kubernetes' NamespaceLifecycle plugin): a namespaced object
  may be created only in a namespace that exists (``namespaces "x" not
  found``) and is not being deleted (``… is forbidden: unable to create new
  content in namespace x because it is being terminated``); ``default``,
  ``kube-system`` and ``kube-public`` may not be deleted. ``default`` always
  exists: each apiserver creates it at start, with a Namespace for any
  namespace that already holds pods (objects stored before Namespaces were);
* **deletion** (Kubernetes' namespace controller): deleting a namespace sets
  its ``deletionTimestamp`` and phase ``Terminating``, then every Deployment,
  ReplicaSet, ConfigMap and Secret in it (``removers``), then every pod in it
  is deleted the ordinary way (at once if unbound, with its grace period if
  bound, its kubelet finishing it); when none is left the Namespace itself
  is removed. A sweep runs at once on delete, again whenever a pod of the
  namespace goes away (``poke``), and every ``RESWEEP_SECONDS`` over every
  terminating namespace, so a replica that crashed mid-way loses nothing.

A create that raced a deletion (checked Active, committed after the sweep
listed the namespace's pods) is caught by checking again after the write:
either the sweep sees the new pod, or the creator sees ``Terminating`` and
removes its pod.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.msg import Msg

from peapod.api import Namespace, NamespaceStatus, now_rfc3339
from peapod.api.selectors import parse_label_selector
from peapod.apiserver import admission
from peapod.apiserver.store import Store, Stored
from peapod.bus import subjects as s
from peapod.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound

log = structlog.get_logger("apiserver.namespaces")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]
RemovePod = Callable[[str, str], Awaitable[dict[str, Any]]]

DEFAULT = "default"
IMMORTAL = frozenset({DEFAULT, "kube-system", "kube-public"})  # Kubernetes' immortal namespaces
RESWEEP_SECONDS = 10.0
_RETRIES = 5


def namespace_key(name: str) -> tuple[str, str]:
    return s.kv_key("namespaces", None, name), f'namespaces "{name}"'


def _request_name(payload: dict[str, Any]) -> str:
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid("request field 'name' must be a non-empty string")
    return name


class Namespaces:
    def __init__(self, store: Store, *, remove_pod: RemovePod) -> None:
        self.store = store
        self._remove_pod = remove_pod  # (namespace, name) -> {"object", "finished"}
        # other kinds a namespace's deletion removes, before its pods: resource -> remover
        self.removers: dict[str, RemovePod] = {}
        self._poked: set[str] = set()
        self._wake = asyncio.Event()

    def routes(self) -> dict[str, Route]:
        return {s.api("namespaces", "create"): self.create_namespace,
                s.api("namespaces", "apply"): self.apply_namespace,
                s.api("namespaces", "update"): self.update_namespace,
                s.api("namespaces", "get"): self.get_namespace,
                s.api("namespaces", "list"): self.list_namespaces,
                s.api("namespaces", "delete"): self.delete_namespace}

    # -- API ----------------------------------------------------------------------------

    async def create_namespace(self, payload: dict[str, Any], msg: Msg) -> Any:
        ns = admission.admit_new_namespace(self._object(payload))
        key, what = namespace_key(ns.metadata.name or "")
        stored = await self.store.create(key, ns.to_wire(), what=what)
        log.info("namespace_created", namespace=ns.metadata.name, uid=ns.metadata.uid)
        return stored.value

    async def apply_namespace(self, payload: dict[str, Any], msg: Msg) -> Any:
        doc = self._object(payload)
        applied = admission.parse_applied(doc, Namespace)
        key, what = namespace_key(applied.metadata.name or "")
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return {"object": await self.create_namespace(payload, msg), "action": "created"}
        merged, action = admission.merge_applied_namespace(
            Namespace.model_validate(current.value), applied)
        if action == "unchanged":
            return {"object": current.value, "action": action}
        result = await self.store.update(key, merged.to_wire(), expected=current.revision,
                                         what=what)
        return {"object": result.value, "action": action}

    async def update_namespace(self, payload: dict[str, Any], msg: Msg) -> Any:
        """Labels and annotations at the sender's resourceVersion (``label ns``): compare-and-set."""
        incoming = admission.parse_applied(self._object(payload), Namespace)
        key, what = namespace_key(incoming.metadata.name or "")
        current = await self.store.get(key, what=what)
        if incoming.metadata.resource_version != str(current.revision):
            raise Conflict(f"Operation cannot be fulfilled on {what}: the object has been "
                           "modified; please apply your changes to the latest version and try "
                           "again")
        merged, _ = admission.merge_applied_namespace(Namespace.model_validate(current.value),
                                                      incoming)
        result = await self.store.update(key, merged.to_wire(), expected=current.revision,
                                         what=what)
        return result.value

    async def get_namespace(self, payload: dict[str, Any], msg: Msg) -> Any:
        key, what = namespace_key(_request_name(payload))
        return (await self.store.get(key, what=what)).value

    async def list_namespaces(self, payload: dict[str, Any], msg: Msg) -> Any:
        labels = parse_label_selector(payload.get("labelSelector"))
        items = [item.value for item in await self.store.list(s.kv_prefix("namespaces"))]
        return [obj for obj in items if labels(obj["metadata"].get("labels") or {})]

    async def delete_namespace(self, payload: dict[str, Any], msg: Msg) -> Any:
        name = _request_name(payload)
        key, what = namespace_key(name)
        for _ in range(_RETRIES):
            current = await self.store.get(key, what=what)
            if name in IMMORTAL:
                raise Forbidden(f"{what} is forbidden: this namespace may not be deleted")
            ns = Namespace.model_validate(current.value)
            if ns.terminating:
                self.poke(name)
                raise Conflict(f"Operation cannot be fulfilled on {what}: The system is ensuring "
                               "all content is removed from this namespace.  Upon completion, "
                               "this namespace will automatically be purged by the system.")
            ns.metadata.deletion_timestamp = now_rfc3339()
            ns.status = NamespaceStatus(phase="Terminating")
            try:
                result = await self.store.update(key, ns.to_wire(), expected=current.revision,
                                                 what=what)
            except Conflict:
                continue
            log.info("namespace_terminating", namespace=name, uid=ns.metadata.uid)
            return {"object": result.value, "finished": await self.sweep(name)}
        raise Conflict(f"{what}: too many concurrent updates")

    # -- admission ----------------------------------------------------------------------

    async def admit_into(self, namespace: str, what: str) -> Namespace:
        """Refuse creating ``what`` (``pods "web"``) in a missing or terminating namespace."""
        key, ns_what = namespace_key(namespace)
        ns = Namespace.model_validate((await self.store.get(key, what=ns_what)).value)
        if ns.terminating:
            raise Forbidden(f"{what} is forbidden: unable to create new content in namespace "
                            f"{namespace} because it is being terminated")
        return ns

    async def create_in(self, namespace: str, key: str, value: dict[str, Any], *,
                        what: str) -> Stored:
        """Store a new namespaced object, admitted into ``namespace`` before and after the
        write: a create that raced the namespace's deletion is removed again."""
        await self.admit_into(namespace, what)
        stored = await self.store.create(key, value, what=what)
        try:
            await self.admit_into(namespace, what)  # a deletion may have raced us
        except (NotFound, Forbidden):
            with contextlib.suppress(NotFound, Conflict):
                await self.store.delete(key, stored.value, expected=stored.revision, what=what)
            raise
        return stored

    async def ensure_initial(self) -> None:
        """``default``, and a Namespace for every namespace that holds pods but has none."""
        wanted = {DEFAULT}
        for item in await self.store.list(s.kv_prefix("pods")):
            wanted.add(item.value["metadata"].get("namespace") or DEFAULT)
        present = {item.value["metadata"]["name"]
                   for item in await self.store.list(s.kv_prefix("namespaces"))}
        for name in sorted(wanted - present):
            doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            key, what = namespace_key(name)
            with contextlib.suppress(AlreadyExists):  # another replica was first
                await self.store.create(key, admission.admit_new_namespace(doc).to_wire(),
                                        what=what)
                log.info("namespace_created", namespace=name, reason="initial")

    # -- deletion -----------------------------------------------------------------------

    def poke(self, namespace: str) -> None:
        """Something in ``namespace`` went away: sweep it soon if it is terminating."""
        self._poked.add(namespace)
        self._wake.set()

    async def sweep(self, name: str) -> bool:
        """Delete what is left in a terminating namespace; True once the namespace is gone."""
        key, what = namespace_key(name)
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return True
        if not Namespace.model_validate(current.value).terminating:
            return False
        remaining = 0
        for resource, remove in [*self.removers.items(), ("pods", self._remove_pod)]:
            remaining += await self._remove_all(name, resource, remove)
        if remaining:
            return False
        try:
            await self.store.delete(key, current.value, expected=current.revision, what=what)
        except Conflict:
            return False  # it changed since it was read: the next sweep looks again
        log.info("namespace_deleted", namespace=name)
        return True

    async def _remove_all(self, namespace: str, resource: str, remove: RemovePod) -> int:
        """Delete every ``resource`` in ``namespace``; how many are still going away."""
        remaining = 0
        for item in await self.store.list(s.kv_prefix(resource, namespace)):
            meta = item.value["metadata"]
            if meta.get("deletionTimestamp"):
                remaining += 1  # its kubelet (or the garbage collector) finishes it
                continue
            try:
                removed = await remove(namespace, meta["name"])
            except NotFound:
                continue
            except Conflict:
                remaining += 1
                continue
            remaining += 0 if removed["finished"] else 1
        return remaining

    async def sweep_all(self) -> None:
        for item in await self.store.list(s.kv_prefix("namespaces")):
            if Namespace.model_validate(item.value).terminating:
                await self.sweep(item.value["metadata"]["name"])

    async def run(self) -> None:
        """Sweep poked namespaces as soon as they are poked, every terminating one now and then."""
        await self.sweep_all()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RESWEEP_SECONDS)
            self._wake.clear()
            poked, self._poked = self._poked, set()
            if not poked:
                await self.sweep_all()
            for name in sorted(poked):
                await self.sweep(name)

    @staticmethod
    def _object(payload: dict[str, Any]) -> dict[str, Any]:
        obj = payload.get("object")
        if not isinstance(obj, dict):
            raise Invalid("request field 'object' must be a JSON object")
        return obj
