"""Namespace, as Kubernetes' core/v1 defines it: the scope of every namespaced name.

A Namespace is cluster-scoped. The apiserver sets its ``status.phase``
(``Active``, then ``Terminating`` once it is deleted), puts the finalizer
``kubernetes`` in ``spec.finalizers`` and the label
``kubernetes.io/metadata.name`` on it, as Kubernetes does. peapod has no
``finalize`` subresource, so ``kubernetes`` is the only finalizer a manifest
may name; any other is refused rather than left to block deletion for ever.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.base import Model
from peapod.api.meta import ObjectMeta

FINALIZER_KUBERNETES = "kubernetes"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"


class NamespaceSpec(Model):
    finalizers: list[str] | None = None


class NamespaceCondition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class NamespaceStatus(Model):
    phase: Literal["Active", "Terminating"] | None = None
    conditions: list[NamespaceCondition] | None = None


class Namespace(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    metadata: ObjectMeta
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus | None = None

    @property
    def terminating(self) -> bool:
        phase = self.status.phase if self.status else None
        return phase == "Terminating" or self.metadata.deletion_timestamp is not None
