"""The Deployment controller: one ReplicaSet per pod template, rolled from old to new.

A reconcile of one Deployment reads the cache: the ReplicaSets it controls
(claimed as pods are: adopt matching orphans, release those whose labels
moved), the *new* one (whose template is the Deployment's, ignoring the
``pod-template-hash`` label) and the old ones. Then, as Kubernetes'
``syncDeployment``:

* no new ReplicaSet: create ``<deployment>-<pod-template-hash>`` with the
  next revision; if that name is taken by another template, raise
  ``status.collisionCount`` so the next hash differs;
* a new ReplicaSet that is not the latest revision (``rollout undo`` chose
  an old template): give it the next revision;
* **RollingUpdate**: grow the new ReplicaSet within ``replicas + maxSurge``,
  shrink the old ones while ``replicas - maxUnavailable`` stay available
  (``rollout.py``); **Recreate**: old ones to 0, wait until their pods are
  gone, then the new one to ``replicas``;
* delete old, empty ReplicaSets beyond ``revisionHistoryLimit``;
* write ``status`` (replicas, updated, ready, available, unavailable,
  observedGeneration, collisionCount, the Available and Progressing
  conditions).

Every write is one compare-and-set through the apiserver; a conflict means
the cache was behind, and the key runs again once it caught up. ReplicaSet
changes (their status follows their pods) queue their Deployment.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from peapod.api import now_rfc3339
from peapod.api.apps import Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.events import EventRecorder
from peapod.bus.informer import WatchEvent
from peapod.bus.workqueue import Done, Outcome, RetryAfter
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache, Object
from peapod.controllers.claiming import claim_pods
from peapod.controllers.queueing import QueuedController, adopt_and_release
from peapod.controllers.rollout import (
    REVISION,
    available,
    desired,
    fenceposts,
    new_replicaset,
    new_rs_replicas,
    old_scale_downs,
    revision_of,
    same_template,
    template_hash,
)
from peapod.errors import AlreadyExists, Conflict, NotFound, PeapodError

log = structlog.get_logger("controllers.deployment")

RETRY_SECONDS = 1.0


class DeploymentController(QueuedController):
    name = "deployment"

    def __init__(self, *, cache: ControllerCache, api: ApiClient, events: EventRecorder,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(cache=cache, clock=clock)
        self.api = api
        self.events = events
        cache.on_event(self._on_event)

    def initial_keys(self) -> list[str]:
        return [_key(deploy) for deploy in self.cache.of_kind("deployments")]

    def _on_event(self, event: WatchEvent[Object], previous: Object | None) -> None:
        obj = event.obj
        if isinstance(obj, Deployment):
            self.add(event.key)
        elif isinstance(obj, ReplicaSet):
            namespace = obj.metadata.namespace or "default"
            for candidate in (obj, previous):
                ref = candidate.metadata.controller_ref() if candidate is not None else None
                if ref is not None and ref.kind == "Deployment":
                    self.add(s.kv_key("deployments", namespace, ref.name))
            if obj.metadata.controller_ref() is None:
                for deploy in self.cache.of_kind("deployments", namespace):
                    if deploy.spec.selector and deploy.spec.selector.matches(obj.metadata.labels):
                        self.add(_key(deploy))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Outcome:
        deploy: Deployment | None = self.cache.get(key)
        if deploy is None or deploy.metadata.deletion_timestamp or deploy.spec.selector is None:
            return Done()
        dlog = log.bind(namespace=deploy.metadata.namespace, name=deploy.metadata.name,
                        uid=deploy.metadata.uid)
        try:
            owned = await self._claim(deploy)
            new = next((rs for rs in owned if same_template(rs, deploy)), None)
            old = [rs for rs in owned if rs is not new]
            if new is None:
                return await self._create_new(deploy, owned, dlog)
            if revision_of(new) < max((revision_of(rs) for rs in old), default=0):
                await self._set_revision(new, max(revision_of(rs) for rs in old) + 1)
                return Done()
            await self._roll(deploy, new, old)
            await self._clean_history(deploy, old, dlog)
            return await self._write_status(deploy, new, old)
        except (Conflict, NotFound) as exc:
            dlog.debug("deployment_conflict", error=exc.message)
            return RetryAfter(RETRY_SECONDS)

    async def _claim(self, deploy: Deployment) -> list[ReplicaSet]:
        namespace = deploy.metadata.namespace or "default"
        assert deploy.spec.selector is not None
        claim = claim_pods(deploy.metadata.uid or "", deploy.spec.selector,
                           self.cache.of_kind("replicasets", namespace), owner_deleting=False)
        await adopt_and_release(self.api, "replicasets", deploy, claim)
        return [rs for rs in claim.owned if rs.metadata.deletion_timestamp is None]

    async def _create_new(self, deploy: Deployment, owned: list[ReplicaSet], dlog: Any) -> Outcome:
        collisions = deploy.status.collision_count if deploy.status else None
        hash_ = template_hash(deploy.spec.template, collisions)
        revision = max((revision_of(rs) for rs in owned), default=0) + 1
        has_old = any(desired(rs) > 0 or (rs.status and rs.status.replicas) for rs in owned)
        replicas = 0 if deploy.spec.strategy.type == "Recreate" and has_old else \
            new_rs_replicas(deploy, owned, new_replicaset(deploy, hash_=hash_, revision=revision,
                                                           replicas=0))
        rs = new_replicaset(deploy, hash_=hash_, revision=revision, replicas=replicas)
        try:
            await self.api.create("replicasets", rs.to_wire())
        except AlreadyExists:
            return await self._name_taken(deploy, rs, dlog)
        dlog.info("replicaset_created", replicaset=rs.metadata.name, revision=revision)
        await self.events.record(deploy.to_wire(), reason="ScalingReplicaSet",
                                 message=f"Scaled up replica set {rs.metadata.name} to {replicas}")
        return Done()

    async def _name_taken(self, deploy: Deployment, wanted: ReplicaSet, dlog: Any) -> Outcome:
        """The hash's name exists: ours and not yet cached, or a collision (raise the count)."""
        live = ReplicaSet.model_validate(await self.api.get(
            "replicasets", wanted.metadata.namespace or "default", wanted.metadata.name or ""))
        ref = live.metadata.controller_ref()
        if ref is not None and ref.uid == deploy.metadata.uid and same_template(live, deploy):
            return RetryAfter(RETRY_SECONDS)  # our own write; the cache will show it
        status = (deploy.status or DeploymentStatus()).model_copy()
        status.collision_count = (status.collision_count or 0) + 1
        updated = deploy.model_copy(deep=True)
        updated.status = status
        await self.api.update("deployments", updated.to_wire(), status=True)
        dlog.warning("hash_collision", replicaset=wanted.metadata.name,
                     collision_count=status.collision_count)
        return Done()

    async def _set_revision(self, rs: ReplicaSet, revision: int) -> None:
        updated = rs.model_copy(deep=True)
        updated.metadata.annotations = {**(rs.metadata.annotations or {}), REVISION: str(revision)}
        await self.api.update("replicasets", updated.to_wire())

    async def _scale(self, deploy: Deployment, rs: ReplicaSet, to: int) -> None:
        if desired(rs) == to:
            return
        updated = rs.model_copy(deep=True)
        updated.spec.replicas = to
        await self.api.update("replicasets", updated.to_wire())
        direction = "up" if to > desired(rs) else "down"
        log.info("replicaset_scaled", namespace=rs.metadata.namespace, name=rs.metadata.name,
                 uid=rs.metadata.uid, replicas=to, previous=desired(rs))
        await self.events.record(deploy.to_wire(), reason="ScalingReplicaSet",
                                 message=f"Scaled {direction} replica set {rs.metadata.name} "
                                         f"to {to} from {desired(rs)}")

    async def _roll(self, deploy: Deployment, new: ReplicaSet, old: list[ReplicaSet]) -> None:
        if deploy.spec.strategy.type == "Recreate":
            for rs in old:
                await self._scale(deploy, rs, 0)
            if any((rs.status.replicas if rs.status else 0) for rs in old):
                return  # the old pods are still going: the ReplicaSets' status brings us back
            await self._scale(deploy, new, deploy.spec.replicas)
            return
        if desired(new) > deploy.spec.replicas:
            await self._scale(deploy, new, deploy.spec.replicas)
        else:
            await self._scale(deploy, new, new_rs_replicas(deploy, [new, *old], new))
        for step in old_scale_downs(deploy, old, new):
            await self._scale(deploy, step.rs, step.to)

    async def _clean_history(self, deploy: Deployment, old: list[ReplicaSet], dlog: Any) -> None:
        empty = [rs for rs in old if desired(rs) == 0 and not (rs.status and rs.status.replicas)]
        extra = len(empty) - deploy.spec.revision_history_limit
        for rs in sorted(empty, key=revision_of)[:max(extra, 0)]:
            try:
                await self.api.delete("replicasets", rs.metadata.namespace or "default",
                                      rs.metadata.name or "")
            except PeapodError as exc:
                dlog.warning("history_cleanup_failed", replicaset=rs.metadata.name, error=exc.message)
                continue
            dlog.info("old_replicaset_deleted", replicaset=rs.metadata.name,
                      revision=revision_of(rs))

    async def _write_status(self, deploy: Deployment, new: ReplicaSet,
                            old: list[ReplicaSet]) -> Outcome:
        status = deployment_status(deploy, new, old)
        if deploy.status is not None and _same_status(status, deploy.status):
            return Done()
        updated = deploy.model_copy(deep=True)
        updated.status = status
        await self.api.update("deployments", updated.to_wire(), status=True)
        return Done()


def deployment_status(deploy: Deployment, new: ReplicaSet, old: list[ReplicaSet]) -> DeploymentStatus:
    """``calculateStatus`` and the Available / Progressing conditions."""
    all_rs = [new, *old]

    def total(field: str) -> int:
        return sum((getattr(rs.status, field) or 0) if rs.status else 0 for rs in all_rs)
    ready, avail = total("ready_replicas"), total("available_replicas")
    _, max_unavailable = fenceposts(deploy)
    previous = {c.type: c for c in (deploy.status.conditions if deploy.status else None) or []}
    is_available = avail >= deploy.spec.replicas - max_unavailable
    complete = (desired(new) == deploy.spec.replicas and available(new) >= deploy.spec.replicas
                and not any(desired(rs) or (rs.status and rs.status.replicas) for rs in old))
    conditions = [
        _condition(previous, "Available", is_available,
                   "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                   "Deployment has minimum availability." if is_available
                   else "Deployment does not have minimum availability."),
        _condition(previous, "Progressing", True,
                   "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                   f'ReplicaSet "{new.metadata.name}" has successfully progressed.' if complete
                   else f'ReplicaSet "{new.metadata.name}" is progressing.'),
    ]
    return DeploymentStatus(
        observed_generation=deploy.metadata.generation, replicas=total("replicas"),
        updated_replicas=(new.status.replicas if new.status else 0), ready_replicas=ready,
        available_replicas=avail, unavailable_replicas=max(deploy.spec.replicas - avail, 0),
        conditions=conditions,
        collision_count=deploy.status.collision_count if deploy.status else None)


def _condition(previous: dict[str, DeploymentCondition], type_: str, ok: bool, reason: str,
               message: str) -> DeploymentCondition:
    status: Literal["True", "False"] = "True" if ok else "False"
    old = previous.get(type_)
    if old is not None and old.status == status and old.reason == reason and old.message == message:
        return old
    now = now_rfc3339()
    since = old.last_transition_time if old is not None and old.status == status else now
    return DeploymentCondition(type=type_, status=status, reason=reason, message=message,
                               last_update_time=now, last_transition_time=since)


def _same_status(a: DeploymentStatus, b: DeploymentStatus) -> bool:
    return a.to_wire() == b.to_wire()


def _key(deploy: Deployment) -> str:
    return s.kv_key("deployments", deploy.metadata.namespace or "default", deploy.metadata.name or "")
