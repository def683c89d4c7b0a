"""The wire contract: Kubernetes-shaped models, validation and manifest parsing.

Imports nothing else of peapod's but ``errors``. The manifest reader (YAML,
and the models of every kind it parses) is loaded on first use of
``parse_object``, ``load_documents`` or ``ApiObject``: a kubelet never
needs it, and a Pi counts its memory.
"""

from typing import TYPE_CHECKING, Any

from peapod.api.base import Model, now_rfc3339, parse_rfc3339
from peapod.api.config import ConfigMap, Secret
from peapod.api.event import Event, EventSource
from peapod.api.meta import Condition, ObjectList, ObjectMeta, ObjectReference, OwnerReference
from peapod.api.namespace import Namespace, NamespaceSpec, NamespaceStatus
from peapod.api.node import Node, NodeAddress, NodeSpec, NodeStatus, NodeSystemInfo
from peapod.api.pod import (
    Container,
    ContainerPort,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    EnvVar,
    Pod,
    PodSpec,
    PodStatus,
    Volume,
    VolumeMount,
)

if TYPE_CHECKING:
    from peapod.api.manifest import ApiObject, load_documents, parse_object

_FROM_MANIFEST = ("ApiObject", "load_documents", "parse_object")


def __getattr__(name: str) -> Any:
    if name in _FROM_MANIFEST:
        from peapod.api import manifest
        return getattr(manifest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ApiObject", "Condition", "ConfigMap", "Container", "ContainerPort", "ContainerState",
    "ContainerStateRunning", "ContainerStateTerminated", "ContainerStateWaiting",
    "ContainerStatus", "EnvVar", "Event", "EventSource", "Model", "Namespace", "NamespaceSpec",
    "NamespaceStatus", "Node", "NodeAddress",
    "NodeSpec", "NodeStatus", "NodeSystemInfo", "ObjectList", "ObjectMeta", "ObjectReference",
    "OwnerReference", "Pod", "PodSpec", "PodStatus", "Secret", "Volume", "VolumeMount",
    "load_documents", "now_rfc3339", "parse_object", "parse_rfc3339",
]
