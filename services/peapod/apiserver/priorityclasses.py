"""PriorityClasses: their API, the built-in ones, and the priority admission of pods.

Kubernetes splits this between the ``priorityclasses`` REST storage, which
creates the two system classes at start and refuses to delete them, and the
``Priority`` admission plugin. peapod keeps both here:

* **the API** (``peapod.api.v1.priorityclasses.create|apply|get|list|delete``):
  cluster-scoped, stored under ``priorityclasses.<name>``; ``value`` and
  ``preemptionPolicy`` never change once created; at most one class is the
  ``globalDefault`` (a second is refused in Kubernetes' words);
* **the built-in classes** ``system-node-critical`` and
  ``system-cluster-critical``: each apiserver creates them at start if they
  are missing (``ensure_system_classes``), and deleting one is forbidden;
* **pod admission** (``admit_pod``): on create, ``priorityClassName``
  becomes ``spec.priority`` and ``spec.preemptionPolicy``; a pod without a
  class gets the global default's name and value, else priority 0 and
  ``PreemptLowerPriority``. An unknown class, or a ``priority`` or
  ``preemptionPolicy`` the pod set that disagrees with its class, is refused
  as Kubernetes refuses it, so the scheduler only ever reads values that a
  PriorityClass vouched for.

Admission reads the classes from memory: each apiserver keeps them in an
informer (list, then watch), as Kubernetes' admission plugin reads a
lister. A pod create then opens no consumer, which would need JetStream's
meta leader: after the server that led the NATS cluster dies, creates go on
while a new leader is elected. An apiserver waits for its own writes of a
class to reach its cache before it answers, so a client that creates a
class and then a pod reads its own write (another replica may see it a few
milliseconds later, as with Kubernetes' informers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.msg import Msg

from peapod.api import Pod, now_rfc3339
from peapod.api.priority import (
    DEFAULT_PRIORITY,
    PREEMPT_LOWER_PRIORITY,
    SYSTEM_NAMES,
    SYSTEM_PRIORITY_CLASSES,
    PriorityClass,
    global_default,
    update_problems,
)
from peapod.api.selectors import parse_label_selector
from peapod.apiserver.admission import merge_metadata, parse_applied, with_generated_name
from peapod.apiserver.store import Store
from peapod.bus import subjects as s
from peapod.bus.informer import Informer
from peapod.errors import AlreadyExists, Forbidden, Invalid, NotFound, invalid

log = structlog.get_logger("apiserver.priorityclasses")

Route = Callable[[dict[str, Any], Msg], Awaitable[Any]]
RESOURCE = "priorityclasses"
GROUP_RESOURCE = "priorityclasses.scheduling.k8s.io"
CACHE_WAIT = 5.0  # seconds a request waits for the cache's first list or for its own write


def _key(name: str) -> tuple[str, str]:
    return s.kv_key(RESOURCE, None, name), f'{GROUP_RESOURCE} "{name}"'


def _name(payload: dict[str, Any]) -> str:
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid("request field 'name' must be a non-empty string")
    return name


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    obj = payload.get("object")
    if not isinstance(obj, dict):
        raise Invalid("request field 'object' must be a JSON object")
    return obj


def prepared(pc: PriorityClass) -> PriorityClass:
    """What the server sets on a PriorityClass's first write (cluster-scoped: no namespace)."""
    meta = pc.metadata
    meta.namespace = meta.resource_version = meta.deletion_timestamp = None
    meta.deletion_grace_period_seconds = None
    meta.uid, meta.creation_timestamp, meta.generation = str(uuid.uuid4()), now_rfc3339(), 1
    pc.preemption_policy = pc.preemption_policy or PREEMPT_LOWER_PRIORITY
    return pc


def _decode(key: str, data: bytes) -> PriorityClass:
    return PriorityClass.model_validate(json.loads(data))


class PriorityClasses:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._informer: Informer[PriorityClass] | None = None  # set while ``run`` runs

    async def run(self) -> None:
        """Keep every PriorityClass in memory until cancelled (the apiserver supervises it)."""
        informer = Informer(self.store.js, bucket=s.KV_BUCKET, keys=f"{RESOURCE}.>",
                            decode=_decode)
        self._informer = informer
        try:
            await informer.run()
        finally:
            self._informer = None

    async def _caught_up(self, revision: int) -> None:
        """Return once the cache holds this apiserver's write at ``revision`` (or after
        ``CACHE_WAIT``: the write is committed either way, only the cache lags)."""
        if self._informer is not None:
            await self._informer.wait_for(revision, timeout=CACHE_WAIT)

    def routes(self) -> dict[str, Route]:
        return {s.api(RESOURCE, "create"): self.create, s.api(RESOURCE, "apply"): self.apply,
                s.api(RESOURCE, "get"): self.get, s.api(RESOURCE, "list"): self.list,
                s.api(RESOURCE, "delete"): self.delete}

    async def ensure_system_classes(self) -> None:
        """Kubernetes' apiserver post-start hook: the built-in classes exist."""
        for pc in SYSTEM_PRIORITY_CLASSES:
            key, what = _key(pc.metadata.name or "")
            with contextlib.suppress(AlreadyExists):  # there already, or another replica was first
                await self.store.create(key, prepared(pc.model_copy(deep=True)).to_wire(),
                                        what=what)
                log.info("priorityclass_created", name=pc.metadata.name, reason="system")

    async def classes(self) -> list[PriorityClass]:
        """Every class: from the cache once it has listed, else (not running, or not yet
        listed after ``CACHE_WAIT``) read from the store."""
        informer = self._informer
        if informer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CACHE_WAIT):
                    await informer.synced.wait()
                return informer.objects()
        return [PriorityClass.model_validate(item.value)
                for item in await self.store.list(s.kv_prefix(RESOURCE))]

    # -- API ----------------------------------------------------------------------------

    async def create(self, payload: dict[str, Any], msg: Msg | None = None) -> Any:
        pc = prepared(parse_applied(with_generated_name(_object(payload)), PriorityClass))
        key, what = _key(pc.metadata.name or "")
        await self._refuse_second_default(pc, what)
        stored = await self.store.create(key, pc.to_wire(), what=what)
        log.info("priorityclass_created", name=pc.metadata.name, uid=pc.metadata.uid,
                 value=pc.value)
        await self._caught_up(stored.revision)
        return stored.value

    async def apply(self, payload: dict[str, Any], msg: Msg) -> Any:
        applied = parse_applied(_object(payload), PriorityClass)
        key, what = _key(applied.metadata.name or "")
        try:
            current = await self.store.get(key, what=what)
        except NotFound:
            return {"object": await self.create(payload, msg), "action": "created"}
        stored = PriorityClass.model_validate(current.value)
        if problems := update_problems(stored, applied):
            raise invalid("PriorityClass.scheduling.k8s.io", stored.metadata.name, problems)
        await self._refuse_second_default(applied, what)
        merged, _ = merge_metadata(stored, applied.metadata.labels,
                                   applied.metadata.annotations)
        merged = merged.model_copy(update={"global_default": applied.global_default,
                                           "description": applied.description})
        if merged.to_wire() == stored.to_wire():
            return {"object": current.value, "action": "unchanged"}
        result = await self.store.update(key, merged.to_wire(), expected=current.revision,
                                         what=what)
        log.info("priorityclass_configured", name=stored.metadata.name)
        await self._caught_up(result.revision)
        return {"object": result.value, "action": "configured"}

    async def _refuse_second_default(self, pc: PriorityClass, what: str) -> None:
        """The admission plugin's rule: only one class may be the global default."""
        if not pc.global_default:
            return
        other = global_default([c for c in await self.classes()
                                if c.metadata.name != pc.metadata.name])
        if other is not None:
            raise Forbidden(f"{what} is forbidden: PriorityClass {other.metadata.name} is "
                            "already marked as default. Only one default can exist")

    async def get(self, payload: dict[str, Any], msg: Msg) -> Any:
        key, what = _key(_name(payload))
        return (await self.store.get(key, what=what)).value

    async def list(self, payload: dict[str, Any], msg: Msg) -> Any:
        labels = parse_label_selector(payload.get("labelSelector"))
        return [item.value for item in await self.store.list(s.kv_prefix(RESOURCE))
                if labels(item.value["metadata"].get("labels") or {})]

    async def delete(self, payload: dict[str, Any], msg: Msg) -> Any:
        name = _name(payload)
        key, what = _key(name)
        if name in SYSTEM_NAMES:
            raise Forbidden(f"{what} is forbidden: this is a system priority class and cannot "
                            "be deleted")
        current = await self.store.get(key, what=what)
        revision = await self.store.delete(key, current.value, expected=current.revision,
                                           what=what)
        log.info("priorityclass_deleted", name=name)
        await self._caught_up(revision)
        return {"object": current.value, "finished": True}

    # -- pod admission ------------------------------------------------------------------

    async def admit_pod(self, pod: Pod) -> None:
        """Kubernetes' Priority admission plugin on a pod's create: set its priority."""
        spec, what = pod.spec, f'pods "{pod.metadata.name}"'
        classes = await self.classes()
        if spec.priority_class_name:
            pc = next((c for c in classes if c.metadata.name == spec.priority_class_name), None)
            if pc is None:
                raise Forbidden(f"{what} is forbidden: no PriorityClass with name "
                                f"{spec.priority_class_name} was found")
        else:
            pc = global_default(classes)
        value = pc.value if pc is not None else DEFAULT_PRIORITY
        policy = (pc.preemption_policy if pc is not None else None) or PREEMPT_LOWER_PRIORITY
        if spec.priority is not None and spec.priority != value:
            raise Forbidden(f"{what} is forbidden: the integer value of priority ({spec.priority}) "
                            "must not be provided in pod spec; priority admission controller "
                            f"computed {value} from the given PriorityClass name")
        if spec.preemption_policy is not None and spec.preemption_policy != policy:
            raise Forbidden(f"{what} is forbidden: the string value of PreemptionPolicy "
                            f"({spec.preemption_policy}) must not be provided in pod spec; "
                            f"priority admission controller computed {policy} from the given "
                            "PriorityClass name")
        spec.priority_class_name = pc.metadata.name if pc is not None else None
        spec.priority, spec.preemption_policy = value, policy
