"""ObjectMeta and the small shared types (conditions, owner references)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.base import Model

FOREGROUND_DELETION = "foregroundDeletion"  # the garbage collector's finalizers
ORPHAN = "orphan"
GC_FINALIZERS = (FOREGROUND_DELETION, ORPHAN)
# the Job controller's finalizer on each of its pods: held until the pod's end is counted
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
# the apiVersion of each kind outside the core group; every other kind is v1
API_VERSIONS = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1",
                "DaemonSet": "apps/v1", "Job": "batch/v1",
                "CronJob": "batch/v1",
                "PriorityClass": "scheduling.k8s.io/v1"}


def qualified_kind(kind: str) -> str:
    """The kind with its group, as Kubernetes' errors name it (``Deployment.apps``)."""
    group = API_VERSIONS.get(kind, "v1").rpartition("/")[0]
    return f"{kind}.{group}" if group else kind


class OwnerReference(Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with ``controller: true``, if any (metav1.GetControllerOf)."""
        return next((ref for ref in self.owner_references or [] if ref.controller), None)


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    last_probe_time: str | None = None
    last_heartbeat_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ObjectReference(Model):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    api_version: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class ListMeta(Model):
    resource_version: str | None = None


class ObjectList(Model):
    """``kind: List`` as kubectl prints it for ``get -o json`` of several objects."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["List"] = "List"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[dict[str, object]] = Field(default_factory=list)
