"""ConfigMaps and Secrets: their API, and a node's reads of them (Kubernetes' Node authorizer).

* ``peapod.api.v1.configmaps|secrets.create|apply|get|list|delete`` for the
  CLI. Admission is Kubernetes' strategy: a Secret's ``stringData`` is merged
  into ``data`` and dropped, its ``type`` defaults to ``Opaque``; an
  ``immutable`` object's data (and the flag itself) never change again; a
  Secret's type never changes.
* ``peapod.api.v1.node.<node>.configmap|secret`` for a kubelet. The NATS
  permissions guarantee which node asks; the apiserver answers only for an
  object that a pod bound to that node references (env, envFrom, volumes,
  projections), and refuses anything else in Kubernetes' words, so a node
  can never read the secrets of another node's pods, whatever it asks for.

Values are never logged: log lines name the object only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.msg import Msg

from peapod.api import ConfigMap, Pod, Secret, parse_object
from peapod.api.config import encode_b64
from peapod.api.manifest import needs_generated_name, refuse_generate_name_for_apply
from peapod.api.selectors import parse_label_selector
from peapod.api.sources import referenced_objects
from peapod.apiserver.admission import prepare_namespaced, with_generated_name
from peapod.apiserver.namespaces import Namespaces, RemovePod
from peapod.apiserver.store import Store
from peapod.bus import subjects as s
from peapod.errors import AlreadyExists, Forbidden, Invalid, NotFound, invalid

log = structlog.get_logger("apiserver.configs")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]
Config = ConfigMap | Secret
RESOURCES: dict[str, type[ConfigMap] | type[Secret]] = {"configmaps": ConfigMap,
                                                        "secrets": Secret}
_IMMUTABLE = "Forbidden: field is immutable when `immutable` is set"


def _resource_of(obj: Config) -> str:
    return "configmaps" if isinstance(obj, ConfigMap) else "secrets"


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise Invalid(f"request field {field!r} must be a non-empty string")
    return value


def _key(resource: str, namespace: str, name: str) -> tuple[str, str]:
    return s.kv_key(resource, namespace, name), f'{resource} "{name}"'


def admit_new(doc: dict[str, Any], kind: type[Config], *, namespace: str | None) -> Config:
    """A ConfigMap or Secret ready for its first write (Kubernetes' PrepareForCreate)."""
    obj = parse_object(with_generated_name(doc))
    if not isinstance(obj, kind):
        raise Invalid(f"expected kind {kind.__name__}, got {obj.kind}")
    prepare_namespaced(obj.metadata, namespace=namespace)
    return _normalised(obj)


def _normalised(obj: Config) -> Config:
    if isinstance(obj, Secret):
        obj.data = {k: encode_b64(v) for k, v in obj.contents().items()} or None
        obj.string_data = None
        obj.type = obj.type or "Opaque"
    return obj


def merge_applied(stored: Config, applied: Config) -> tuple[Config, str]:
    """``applied`` over ``stored``, refusing what ``immutable`` and a Secret's type forbid."""
    applied = _normalised(applied)
    kind, name = stored.kind, stored.metadata.name
    if isinstance(stored, Secret) and isinstance(applied, Secret) and applied.type != stored.type:
        raise invalid(kind, name, [f'type: Invalid value: "{applied.type}": field is immutable'])
    fields = ("data", "binary_data") if isinstance(stored, ConfigMap) else ("data",)
    if stored.immutable:
        if not applied.immutable:
            raise invalid(kind, name, [f"immutable: {_IMMUTABLE}"])
        if any(getattr(applied, f) != getattr(stored, f) for f in fields):
            raise invalid(kind, name, [f"data: {_IMMUTABLE}"])
    merged = stored.model_copy(deep=True)
    merged.metadata.labels = applied.metadata.labels
    merged.metadata.annotations = applied.metadata.annotations
    for field in (*fields, "immutable"):
        setattr(merged, field, getattr(applied, field))
    return merged, "unchanged" if merged.to_wire() == stored.to_wire() else "configured"


class ConfigObjects:
    def __init__(self, store: Store, namespaces: Namespaces) -> None:
        self.store = store
        self.namespaces = namespaces

    def routes(self) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        for resource in RESOURCES:
            routes.update({
                s.api(resource, "create"): self._bind(self.create, resource),
                s.api(resource, "apply"): self._bind(self.apply, resource),
                s.api(resource, "get"): self._bind(self.get, resource),
                s.api(resource, "list"): self._bind(self.list, resource),
                s.api(resource, "delete"): self._bind(self.delete, resource),
            })
        routes[f"{s.API_PREFIX}.node.*.configmap"] = self._bind(self.node_get, "configmaps")
        routes[f"{s.API_PREFIX}.node.*.secret"] = self._bind(self.node_get, "secrets")
        return routes

    @staticmethod
    def _bind(fn: Callable[[str, dict[str, Any], Msg], Awaitable[Any]], resource: str) -> Route:
        async def route(payload: dict[str, Any], msg: Msg) -> Any:
            return await fn(resource, payload, msg)
        return route

    # -- the API ------------------------------------------------------------------------

    async def create(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        doc = _object(payload)
        for _ in range(7 if needs_generated_name(doc) else 0):
            with contextlib.suppress(AlreadyExists):  # a generated name that is taken
                return await self._create(resource, doc, payload.get("namespace"))
        return await self._create(resource, doc, payload.get("namespace"))

    async def _create(self, resource: str, doc: dict[str, Any], namespace: str | None) -> Any:
        obj = admit_new(doc, RESOURCES[resource], namespace=namespace)
        namespace = obj.metadata.namespace or "default"
        key, what = _key(resource, namespace, obj.metadata.name or "")
        stored = await self.namespaces.create_in(namespace, key, obj.to_wire(), what=what)
        log.info("object_created", resource=resource, namespace=namespace,
                 name=obj.metadata.name, uid=obj.metadata.uid)
        return stored.value

    async def apply(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        doc = _object(payload)
        refuse_generate_name_for_apply(doc)
        applied = parse_object(doc)
        kind = RESOURCES[resource]
        if not isinstance(applied, kind):
            raise Invalid(f"expected kind {kind.__name__}, got {applied.kind}")
        namespace = applied.metadata.namespace or payload.get("namespace") or "default"
        key, what = _key(resource, namespace, applied.metadata.name or "")
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return {"object": await self.create(resource, payload, msg), "action": "created"}
        merged, action = merge_applied(kind.model_validate(current.value), applied)
        if action == "unchanged":
            return {"object": current.value, "action": action}
        result = await self.store.update(key, merged.to_wire(), expected=current.revision,
                                         what=what)
        log.info("object_configured", resource=resource, namespace=namespace,
                 name=applied.metadata.name)
        return {"object": result.value, "action": action}

    async def get(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        key, what = _key(resource, payload.get("namespace") or "default", _text(payload, "name"))
        return (await self.store.get(key, what=what)).value

    async def list(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        namespace = payload.get("namespace") or None
        labels = parse_label_selector(payload.get("labelSelector"))
        items = [item.value for item in await self.store.list(s.kv_prefix(resource, namespace))]
        return [obj for obj in items if labels(obj["metadata"].get("labels") or {})]

    async def delete(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        return await self.remove(resource, payload.get("namespace") or "default",
                                 _text(payload, "name"))

    async def remove(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """Delete at once (nothing owns or waits for a ConfigMap or Secret)."""
        key, what = _key(resource, namespace, name)
        current = await self.store.get(key, what=what)
        await self.store.delete(key, current.value, expected=current.revision, what=what)
        log.info("object_deleted", resource=resource, namespace=namespace, name=name)
        return {"object": current.value, "finished": True}

    def removers(self) -> dict[str, RemovePod]:
        """What a namespace's deletion calls to remove each of its ConfigMaps and Secrets."""
        return {resource: functools.partial(self.remove, resource) for resource in RESOURCES}

    # -- a node's reads -----------------------------------------------------------------

    async def node_get(self, resource: str, payload: dict[str, Any], msg: Msg) -> Any:
        """The object, if a pod bound to the asking node references it (Node authorizer)."""
        node = s.node_of_api(msg.subject)
        namespace, name = _text(payload, "namespace"), _text(payload, "name")
        kind = "ConfigMap" if resource == "configmaps" else "Secret"
        for item in await self.store.list(s.kv_prefix("pods", namespace)):
            pod = Pod.model_validate(item.value)
            if pod.spec.node_name == node and (kind, name) in referenced_objects(pod):
                key, what = _key(resource, namespace, name)
                return (await self.store.get(key, what=what)).value
        log.warning("node_read_refused", node=node, resource=resource, namespace=namespace,
                    name=name)
        raise Forbidden(f'{resource} "{name}" is forbidden: User "system:node:{node}" cannot get '
                        f'resource "{resource}" in API group "" in the namespace "{namespace}": '
                        f"no relationship found between node '{node}' and this object")


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    obj = payload.get("object")
    if not isinstance(obj, dict):
        raise Invalid("request field 'object' must be a JSON object")
    return obj
