"""The controller manager's writes, as requests to the apiserver.

Every write is one of the apiserver's verbs, checked there like any
client's: ``pods.create|delete|update``, ``<workload>.update|status|create|delete``.
A write that carries ``metadata.resourceVersion`` is a compare-and-set, so a
controller acting on a stale cache loses with ``Conflict`` instead of
overwriting a newer state.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NATS

from peapod.bus import subjects as s
from peapod.bus.client import request


class ApiClient:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc

    async def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace")
        result: dict[str, Any] = await request(self.nc, s.api(resource, "create"),
                                               {"object": obj, "namespace": namespace})
        return result

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await request(self.nc, s.api(resource, "get"),
                                               {"namespace": namespace, "name": name})
        return result

    async def update(self, resource: str, obj: dict[str, Any], *, status: bool = False
                     ) -> dict[str, Any]:
        verb = "status" if status else "update"
        result: dict[str, Any] = await request(self.nc, s.api(resource, verb), {
            "object": obj, "namespace": obj["metadata"].get("namespace")})
        return result

    async def remove_finalizer(self, resource: str, obj: Any, finalizer: str) -> dict[str, Any]:
        """Update ``obj`` (a model, at its resourceVersion) without ``finalizer``."""
        updated = obj.model_copy(deep=True)
        updated.metadata.finalizers = [f for f in obj.metadata.finalizers or []
                                       if f != finalizer] or None
        return await self.update(resource, updated.to_wire())

    async def update_node(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Labels, annotations, unschedulable and taints of a Node, at its resourceVersion."""
        result: dict[str, Any] = await request(self.nc, s.api("nodes", "update"), {"object": obj})
        return result

    async def delete(self, resource: str, namespace: str, name: str, *,
                     policy: str | None = None, grace: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"namespace": namespace, "name": name}
        if policy:
            payload["propagationPolicy"] = policy
        if grace is not None:
            payload["gracePeriodSeconds"] = grace
        result: dict[str, Any] = await request(self.nc, s.api(resource, "delete"), payload)
        return result
