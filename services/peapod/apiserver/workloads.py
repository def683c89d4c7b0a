"""ReplicaSets and Deployments in the store: create, apply, get, list, update, status, delete.

Both kinds are stored whole under ``replicasets.<ns>.<name>`` and
``deployments.<ns>.<name>``; their controllers live in the controller
manager, which talks to this API like any client. The rules are Kubernetes':

* **generation**: ``metadata.generation`` starts at 1 and grows by one with
  each change of the spec; the controller reports the generation it acted
  on in ``status.observedGeneration``, so ``rollout status`` knows whether
  its view is current;
* **status** is written only through the ``status`` verb (the status
  subresource), which changes nothing else; every other write keeps the
  stored status;
* **update** (``update``) replaces labels, annotations, owner references,
  finalizers and spec of the object at the ``resourceVersion`` it names,
  a compare-and-set;
* **deletion** follows the propagation policy. ``Background`` (the
  default) removes the object at once and the garbage collector deletes its
  dependents; ``Foreground`` and ``Orphan`` add the finalizer
  ``foregroundDeletion`` or ``orphan`` and set ``deletionTimestamp``: the
  garbage collector deletes the dependents (or removes their owner
  reference) and then the finalizer, and the write that removes an
  object's last finalizer while it is being deleted removes the object.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from nats.aio.msg import Msg
from pydantic.alias_generators import to_camel

from peapod.api import now_rfc3339, parse_object
from peapod.api.apps import DaemonSet, Deployment, ReplicaSet
from peapod.api.batch import CONTROLLER_UID, JOB_NAME, LEGACY_LABELS, CronJob, Job
from peapod.api.labelselector import LabelSelector
from peapod.api.meta import FOREGROUND_DELETION, ORPHAN
from peapod.api.selectors import parse_label_selector
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.apiserver import admission
from peapod.apiserver.namespaces import Namespaces
from peapod.apiserver.store import Store, Stored
from peapod.bus import subjects as s
from peapod.errors import Conflict, Invalid, NotFound, invalid

log = structlog.get_logger("apiserver.workloads")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]
Workload = TypeVar("Workload", ReplicaSet, Deployment, DaemonSet, Job, CronJob,
                    PersistentVolume, PersistentVolumeClaim)
PROPAGATION = {"Background": None, "Foreground": FOREGROUND_DELETION, "Orphan": ORPHAN}


def propagation_finalizer(payload: dict[str, Any]) -> str | None:
    """The finalizer a delete request's ``propagationPolicy`` asks for (None: background)."""
    policy = payload.get("propagationPolicy") or "Background"
    if policy not in PROPAGATION:
        raise Invalid(f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                      '"Background", "Foreground", "Orphan"')
    return PROPAGATION[policy]


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise Invalid(f"request field {field!r} must be a non-empty string")
    return value


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    obj = payload.get("object")
    if not isinstance(obj, dict):
        raise Invalid("request field 'object' must be a JSON object")
    return obj


class WorkloadApi(Generic[Workload]):
    """The API of one namespaced apps/v1 kind (``resource`` is its plural: ``replicasets``)."""

    def __init__(self, store: Store, namespaces: Namespaces, *, resource: str,
                 model: type[Workload], group: str = "apps",
                 rules: KindRules | None = None, namespaced: bool = True) -> None:
        self.store = store
        self.namespaces = namespaces
        self.resource = resource
        self.model: type[Workload] = model
        self.group = group
        self.rules = rules or KindRules()
        self.namespaced = namespaced  # False: a cluster-scoped kind (PersistentVolume)

    def routes(self) -> dict[str, Route]:
        verbs = {"create": self.create, "apply": self.apply, "get": self.get, "list": self.list,
                 "update": self.update, "status": self.update_status, "delete": self.delete}
        return {s.api(self.resource, verb): fn for verb, fn in verbs.items()}

    def _key(self, namespace: str | None, name: str) -> tuple[str, str]:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        return (s.kv_key(self.resource, namespace if self.namespaced else None, name),
                f'{resource} "{name}"')

    def _requested_namespace(self, payload: dict[str, Any]) -> str | None:
        return _text(payload, "namespace") if self.namespaced else None

    def _parse(self, doc: dict[str, Any]) -> Any:
        obj = parse_object(doc)
        if not isinstance(obj, self.model):
            raise Invalid(f"expected kind {self.model.__name__}, got {obj.kind}")
        return obj

    def _namespace_of(self, obj: Any, payload: dict[str, Any]) -> str | None:
        meta, sent = obj.metadata, payload.get("namespace")
        if not self.namespaced:  # as Kubernetes: a cluster-scoped object has no namespace
            meta.namespace = None
            return None
        if sent and meta.namespace and meta.namespace != sent:
            raise Invalid(f"the namespace of the provided object ({meta.namespace}) does not "
                          f"match the namespace sent on the request ({sent})")
        return str(meta.namespace or sent or "default")

    async def create(self, payload: dict[str, Any], msg: Msg | None = None) -> Any:
        obj = self._parse(admission.with_generated_name(_object(payload)))
        namespace = self._namespace_of(obj, payload)
        meta = obj.metadata
        meta.namespace, meta.uid, meta.creation_timestamp = namespace, str(uuid.uuid4()), now_rfc3339()
        meta.resource_version = meta.deletion_timestamp = meta.deletion_grace_period_seconds = None
        meta.generation, obj.status = 1, None
        key, what = self._key(namespace, meta.name or "")
        self.rules.admit_new(obj, what)
        if namespace is not None:
            await self.namespaces.admit_into(namespace, what)
        stored = await self.store.create(key, obj.to_wire(), what=what)
        log.info("object_created", kind=obj.kind, namespace=namespace, name=meta.name, uid=meta.uid)
        return stored.value

    async def apply(self, payload: dict[str, Any], msg: Msg) -> Any:
        applied = admission.parse_applied(_object(payload), self.model)
        namespace = self._namespace_of(applied, payload)
        key, what = self._key(namespace, applied.metadata.name or "")
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return {"object": await self.create(payload, msg), "action": "created"}
        merged = self._merged(current, applied, keep_owners=True)
        if merged.to_wire() == self.model.model_validate(current.value).to_wire():
            return {"object": current.value, "action": "unchanged"}
        expected = _expected(applied.metadata.resource_version, current.revision, what)
        result = await self.store.update(key, merged.to_wire(), expected=expected, what=what)
        return {"object": result.value, "action": "configured"}

    async def get(self, payload: dict[str, Any], msg: Msg) -> Any:
        key, what = self._key(self._requested_namespace(payload), _text(payload, "name"))
        return (await self.store.get(key, what=what)).value

    async def list(self, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = (payload.get("namespace") or None) if self.namespaced else None
        labels = parse_label_selector(payload.get("labelSelector"))
        items = await self.store.list(s.kv_prefix(self.resource, namespace))
        return [i.value for i in items if labels(i.value["metadata"].get("labels") or {})]

    async def update(self, payload: dict[str, Any], msg: Msg) -> Any:
        """Replace metadata and spec at the ``resourceVersion`` the object names (a PUT)."""
        incoming = self._parse(_object(payload))
        namespace = self._namespace_of(incoming, payload)
        key, what = self._key(namespace, incoming.metadata.name or "")
        current = await self.store.get(key, what=what)
        expected = _expected(incoming.metadata.resource_version, current.revision, what,
                             required=True)
        merged = self._merged(current, incoming, keep_owners=False)
        return await self._write(key, what, merged, expected)

    async def update_status(self, payload: dict[str, Any], msg: Msg) -> Any:
        """The status subresource: only ``status`` changes, at the named ``resourceVersion``."""
        incoming = self.model.model_validate(_object(payload))
        namespace = self._namespace_of(incoming, payload)
        key, what = self._key(namespace, incoming.metadata.name or "")
        current = await self.store.get(key, what=what)
        expected = _expected(incoming.metadata.resource_version, current.revision, what,
                             required=True)
        stored = self.model.model_validate(current.value)
        stored.status = incoming.status
        return (await self.store.update(key, stored.to_wire(), expected=expected, what=what)).value

    async def delete(self, payload: dict[str, Any], msg: Msg) -> Any:
        finalizer = propagation_finalizer(payload)
        return await self.remove(self._requested_namespace(payload), _text(payload, "name"),
                                 finalizer=finalizer)

    async def remove(self, namespace: str | None, name: str, *, finalizer: str | None = None
                     ) -> dict[str, Any]:
        """Delete now, or mark for deletion when a finalizer must run first."""
        key, what = self._key(namespace, name)
        current = await self.store.get(key, what=what)
        obj = self.model.model_validate(current.value)
        meta = obj.metadata
        finalizers = list(meta.finalizers or [])
        if finalizer and finalizer not in finalizers:
            finalizers.append(finalizer)
        if not finalizers:
            await self.store.delete(key, current.value, expected=current.revision, what=what)
            log.info("object_deleted", kind=obj.kind, namespace=namespace, name=name, uid=meta.uid)
            if namespace is not None:
                self.namespaces.poke(namespace)
            return {"object": current.value, "finished": True}
        if meta.deletion_timestamp and finalizers == meta.finalizers:
            return {"object": current.value, "finished": False}
        meta.finalizers = finalizers
        meta.deletion_timestamp = meta.deletion_timestamp or now_rfc3339()
        meta.deletion_grace_period_seconds = 0
        result = await self.store.update(key, obj.to_wire(), expected=current.revision, what=what)
        log.info("object_terminating", kind=obj.kind, namespace=namespace, name=name,
                 uid=meta.uid, finalizers=finalizers)
        return {"object": result.value, "finished": False}

    def _merged(self, current: Stored, incoming: Any, *, keep_owners: bool) -> Any:
        """``incoming``'s labels, annotations, spec (and owners) over the stored object."""
        stored = self.model.model_validate(current.value)
        self.rules.check_update(stored, incoming, current.key)
        merged = stored.model_copy(deep=True)
        meta, new = merged.metadata, incoming.metadata
        meta.labels, meta.annotations = new.labels, new.annotations
        if not keep_owners:
            meta.owner_references, meta.finalizers = new.owner_references, new.finalizers
        admission.refuse_new_finalizers_if_deleting(stored.metadata, meta.finalizers)
        if incoming.spec.to_wire() != stored.spec.to_wire():
            merged.spec = incoming.spec
            meta.generation = (stored.metadata.generation or 1) + 1
        return merged

    async def _write(self, key: str, what: str, obj: Any, expected: int) -> Any:
        meta = obj.metadata
        if meta.deletion_timestamp and not meta.finalizers:
            await self.store.delete(key, obj.to_wire(), expected=expected, what=what)
            log.info("object_deleted", kind=obj.kind, namespace=meta.namespace, name=meta.name,
                     uid=meta.uid, reason="finalizers_done")
            if self.namespaced:
                self.namespaces.poke(meta.namespace or "default")
            return obj.to_wire()
        return (await self.store.update(key, obj.to_wire(), expected=expected, what=what)).value


def _expected(wanted: str | None, latest: int, what: str, *, required: bool = False) -> int:
    """The revision a write must find: the one the object names (or the latest, for apply)."""
    if not wanted:
        if required:
            raise Invalid(f"{what}: metadata.resourceVersion: Invalid value: 0x0: must be "
                          "specified for an update")
        return latest
    if not wanted.isdigit():
        raise Invalid(f"metadata.resourceVersion: invalid value {wanted!r}: must be a number")
    if int(wanted) != latest:
        raise Conflict(f"Operation cannot be fulfilled on {what}: the object has been "
                       "modified; please apply your changes to the latest version and try again")
    return latest


class KindRules:
    """What a kind adds to the generic rules: nothing, for the apps/v1 kinds."""

    def admit_new(self, obj: Any, what: str) -> None:
        """Fill in what the server generates, or refuse (the object has its uid)."""

    def check_update(self, stored: Any, incoming: Any, key: str) -> None:
        """Refuse a change of an immutable field; may fill in generated fields of ``incoming``."""


class JobRules(KindRules):
    """Kubernetes' Job strategy: a generated selector on the Job's uid, labels on its
    template, and a spec that may change only in parallelism, activeDeadlineSeconds and
    ttlSecondsAfterFinished."""

    def admit_new(self, obj: Any, what: str) -> None:
        spec, meta = obj.spec, obj.metadata
        if spec.selector is not None:
            raise invalid("Job.batch", meta.name, [
                f"spec.selector: Invalid value: {spec.selector.to_query()!r}: `selector` not "
                "auto-generated (peapod has no manualSelector)"])
        generated = {CONTROLLER_UID: meta.uid or "", "controller-uid": meta.uid or "",
                     JOB_NAME: meta.name or "", "job-name": meta.name or ""}
        spec.selector = LabelSelector(match_labels={CONTROLLER_UID: meta.uid or ""})
        template = spec.template.metadata
        template.labels = {**(template.labels or {}), **generated}

    def check_update(self, stored: Any, incoming: Any, key: str) -> None:
        incoming.spec.selector = incoming.spec.selector or stored.spec.selector
        generated = {k: v for k, v in (stored.spec.template.metadata.labels or {}).items()
                     if k in (CONTROLLER_UID, JOB_NAME, *LEGACY_LABELS)}
        template = incoming.spec.template.metadata
        template.labels = {**(template.labels or {}), **generated}
        name = stored.metadata.name
        for field in ("template", "completions", "selector", "backoff_limit"):
            old, new = getattr(stored.spec, field), getattr(incoming.spec, field)
            if (old.to_wire() if hasattr(old, "to_wire") else old) != \
                    (new.to_wire() if hasattr(new, "to_wire") else new):
                raise invalid("Job.batch", name, [
                    f"spec.{to_camel(field)}: Invalid value: field is immutable"])


def workload_apis(store: Store, namespaces: Namespaces) -> dict[str, WorkloadApi[Any]]:
    return {"cronjobs": WorkloadApi(store, namespaces, resource="cronjobs", model=CronJob,
                                    group="batch"),
            "jobs": WorkloadApi(store, namespaces, resource="jobs", model=Job, group="batch",
                                rules=JobRules()),
            "daemonsets": WorkloadApi(store, namespaces, resource="daemonsets", model=DaemonSet),
            "deployments": WorkloadApi(store, namespaces, resource="deployments", model=Deployment),
            "replicasets": WorkloadApi(store, namespaces, resource="replicasets", model=ReplicaSet)}
